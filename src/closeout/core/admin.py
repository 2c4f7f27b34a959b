"""The Django admin is for reading: every closeout admin page is read-only, for superusers
too. Configuration (grants, roles, policies, reason codes, approval routes, periods, webhooks,
alert rules, users) changes through the services (CLI, API, workbench), which check the
permission and separation of duties and write the audit event; tests/core/test_admin.py walks
every registered admin to prove no page can change a row."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from closeout.core.models import Counter, Item, OrgUnit, Partner


class ReadOnly:
    """Mixed into an admin class (ours, or Django's own user and group admins): no page may
    add, change or delete a row."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin[Any]):
    pass


class ReadOnlyTabularInline(ReadOnly, admin.TabularInline[Any, Any]):
    extra = 0
    can_delete = False


@admin.register(OrgUnit)
class OrgUnitAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "parent", "path")


@admin.register(Partner)
class PartnerAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "active")
    search_fields = ("code", "name")


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "unit")
    search_fields = ("code", "name")


@admin.register(Counter)
class CounterAdmin(ReadOnlyAdmin):
    """Login throttle and rate-limit counters (database backend): keys are hashes."""

    list_display = ("key", "value", "expires_at")
