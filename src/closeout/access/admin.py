"""Roles and grants, read-only: they change through `closeout grant|revoke` and the API, which
check access.manage and separation of duties and write the audit event. Django's own user and
group pages are read-only too: users are created and their passwords set with `closeout user`
(validated and audited)."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from closeout.access.models import Grant, Role
from closeout.core.admin import ReadOnly, ReadOnlyAdmin


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


class ReadOnlyUserAdmin(ReadOnly, UserAdmin):  # type: ignore[type-arg]
    pass


class ReadOnlyGroupAdmin(ReadOnly, GroupAdmin):
    pass


admin.site.unregister(User)
admin.site.register(User, ReadOnlyUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, ReadOnlyGroupAdmin)
