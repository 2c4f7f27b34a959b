from django.contrib import admin

from closeout.access.models import Grant, Role


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin[Role]):
    list_display = ("code", "name_zh", "name_en")


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin[Grant]):
    list_display = ("user", "role", "org_unit", "valid_from", "valid_until", "revoked_at")
    list_filter = ("role",)
