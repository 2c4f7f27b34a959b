from django.contrib import admin

from closeout.core.models import Item, OrgUnit, Partner


@admin.register(OrgUnit)
class OrgUnitAdmin(admin.ModelAdmin[OrgUnit]):
    list_display = ("code", "name", "parent", "path")


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin[Partner]):
    list_display = ("code", "name", "kind", "active")
    search_fields = ("code", "name")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin[Item]):
    list_display = ("code", "name", "unit")
    search_fields = ("code", "name")
