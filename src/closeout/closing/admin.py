from django.contrib import admin

from closeout.closing.models import ArchiveRun, ClosePolicy, ReasonCode, SweepRun
from closeout.core.admin import ReadOnlyAdmin


@admin.register(ClosePolicy)
class ClosePolicyAdmin(ReadOnlyAdmin):
    list_display = (
        "doc_type",
        "org_unit",
        "under_qty_pct",
        "over_qty_pct",
        "grace_days",
        "auto_close_enabled",
        "archive_after_days",
    )
    list_filter = ("doc_type",)


@admin.register(ReasonCode)
class ReasonCodeAdmin(ReadOnlyAdmin):
    list_display = ("code", "action", "label_zh", "label_en", "active")
    list_filter = ("action", "active")


@admin.register(SweepRun)
class SweepRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "doc_type",
        "dry_run",
        "examined",
        "closed",
        "exception_queue",
        "blocked",
    )


@admin.register(ArchiveRun)
class ArchiveRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "doc_type", "dry_run", "actor_name", "archived", "finished_at")
