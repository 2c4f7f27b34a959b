"""Read-only views of documents: every change goes through the closing services."""

from django.contrib import admin

from closeout.core.admin import ReadOnlyAdmin, ReadOnlyTabularInline
from closeout.documents.models import BusinessEvent, Document, Line

__all__ = ["ReadOnlyAdmin"]  # imported from here by older modules


class LineInline(ReadOnlyTabularInline):
    model = Line
    fields = (
        "line_no",
        "item",
        "planned_qty",
        "fulfilled_qty",
        "invoiced_amount",
        "settled_amount",
        "close_state",
        "released_qty",
        "released_value",
    )
    readonly_fields = fields


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "doc_type",
        "org_unit",
        "partner",
        "close_state",
        "close_kind",
        "close_date",
        "total_amount",
        "released_value",
    )
    list_filter = ("doc_type", "close_state", "close_kind")
    search_fields = ("number",)
    inlines = [LineInline]


@admin.register(BusinessEvent)
class BusinessEventAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "kind",
        "document",
        "line",
        "quantity",
        "amount",
        "status",
        "quarantine_reason",
    )
    list_filter = ("kind", "status")
    search_fields = ("external_id",)
