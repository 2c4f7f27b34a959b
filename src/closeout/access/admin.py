"""Roles and grants, read-only: they change through `closeout grant|revoke` and the API, which
check access.manage and separation of duties and write the audit event. Django's own user and
group pages are read-only too: users are created and their passwords set with `closeout user`
(validated and audited)."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest

from closeout.access.models import Grant, Role
from closeout.core.admin import ReadOnlyAdmin


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    list_display = ("code", "name_zh", "name_en")


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = (
        "user",
        "role",
        "org_unit",
        "valid_from",
        "valid_until",
        "revoked_at",
        "granted_by",
    )
    list_filter = ("role",)


class _ReadOnlyAuth:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyUserAdmin(_ReadOnlyAuth, UserAdmin):  # type: ignore[type-arg]
    pass


class ReadOnlyGroupAdmin(_ReadOnlyAuth, GroupAdmin):
    pass


admin.site.unregister(User)
admin.site.register(User, ReadOnlyUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, ReadOnlyGroupAdmin)
