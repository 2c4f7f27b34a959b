"""Read-only views of documents: every change goes through the closing services."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from closeout.documents.models import BusinessEvent, Document, Line


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LineInline(admin.TabularInline[Line, Document]):
    model = Line
    extra = 0
    can_delete = False
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

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
