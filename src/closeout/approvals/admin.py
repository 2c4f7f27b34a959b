from django.contrib import admin

from closeout.approvals.models import (
    AccountingPeriod,
    ApprovalDecision,
    ApprovalRoute,
    ApprovalStep,
    Attachment,
    CloseRequest,
)
from closeout.core.admin import ReadOnlyAdmin, ReadOnlyTabularInline


class ApprovalStepInline(ReadOnlyTabularInline):
    model = ApprovalStep


@admin.register(ApprovalRoute)
class ApprovalRouteAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "action",
        "doc_type",
        "org_unit",
        "condition",
        "min_open_value",
        "max_open_value",
        "for_closed_period",
        "priority",
        "active",
    )
    list_filter = ("action", "doc_type", "active")
    inlines = [ApprovalStepInline]


class DecisionInline(ReadOnlyTabularInline):
    model = ApprovalDecision
    readonly_fields = (
        "round",
        "step_order",
        "step_name",
        "decider",
        "decision",
        "comment",
        "decided_at",
    )


@admin.register(CloseRequest)
class CloseRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "action",
        "document",
        "requester",
        "state",
        "current_step",
        "round",
        "submitted_at",
    )
    list_filter = ("action", "state")
    inlines = [DecisionInline]


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("original_name", "request", "content_type", "size", "uploaded_by")


@admin.register(AccountingPeriod)
class AccountingPeriodAdmin(ReadOnlyAdmin):
    list_display = ("name", "start", "end", "closed")
