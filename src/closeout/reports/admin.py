"""Read-only admin lists of diagnostic runs and post-close verifications."""

from django.contrib import admin

from closeout.core.admin import ReadOnlyAdmin
from closeout.reports.models import DiagnosticRun, PostCloseVerification


@admin.register(DiagnosticRun)
class DiagnosticRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "trigger", "run_by", "problems", "duration_ms")
    list_filter = ("trigger",)


@admin.register(PostCloseVerification)
class PostCloseVerificationAdmin(ReadOnlyAdmin):
    list_display = ("job", "created_at", "passed", "problem_count", "chain_intact")
    list_filter = ("passed",)
