from django.contrib import admin

from closeout.audit.models import AuditEvent
from closeout.core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "at", "actor_name", "action", "object_repr", "reason")
    list_filter = ("action",)
    search_fields = ("object_repr", "actor_name")
