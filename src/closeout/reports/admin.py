"""Read-only admin lists of diagnostic runs and post-close verifications."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from closeout.reports.models import DiagnosticRun, PostCloseVerification


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DiagnosticRun)
class DiagnosticRunAdmin(_ReadOnly):
    list_display = ("started_at", "trigger", "run_by", "problems", "duration_ms")
    list_filter = ("trigger",)


@admin.register(PostCloseVerification)
class PostCloseVerificationAdmin(_ReadOnly):
    list_display = ("job", "created_at", "passed", "problem_count", "chain_intact")
    list_filter = ("passed",)
