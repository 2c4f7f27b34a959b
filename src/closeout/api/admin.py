"""Admin pages for API tokens (read-only: tokens are made and revoked with `closeout token` or
the API, which write the audit event; only their hash is stored)."""

from django.contrib import admin

from closeout.api.models import ApiToken, IdempotencyRecord
from closeout.core.admin import ReadOnlyAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = (
        "prefix",
        "user",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "name", "prefix")
    exclude = ("key_hash",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "user", "method", "path", "status", "created_at")
    search_fields = ("key", "path")
    exclude = ("body",)
