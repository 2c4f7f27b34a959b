"""Writes of master data: units, partners and items (the lookup by code is core.lookup)."""

from closeout.core.companies import company_profile_add
from closeout.core.models import Item, OrgUnit, Partner, PartnerKind


def org_unit_create(
    *, code: str, name: str, parent: OrgUnit | None = None, company: bool | None = None
) -> OrgUnit:
    """A unit; a root unit is a company (with the installation's currency) unless `company` is
    False, and `company=True` makes a unit below another company a company of its own."""

    unit = OrgUnit.objects.create(code=code, name=name, parent=parent)
    prefix = parent.path if parent else "/"
    unit.path = f"{prefix}{unit.pk}/"
    unit.save(update_fields=["path"])
    if company if company is not None else parent is None:
        company_profile_add(unit)
    return unit


def org_unit_get_or_create(*, code: str, name: str, parent: OrgUnit | None = None) -> OrgUnit:
    existing = OrgUnit.objects.filter(code=code).first()
    return existing or org_unit_create(code=code, name=name, parent=parent)


def partner_get_or_create(*, code: str, name: str, kind: str = PartnerKind.SUPPLIER) -> Partner:
    partner, _ = Partner.objects.get_or_create(code=code, defaults={"name": name, "kind": kind})
    return partner


def item_get_or_create(*, code: str, name: str, unit: str = "EA") -> Item:
    item, _ = Item.objects.get_or_create(code=code, defaults={"name": name, "unit": unit})
    return item


def items_get_or_create(wanted: dict[str, tuple[str, str]]) -> dict[str, Item]:
    """`item_get_or_create` for many codes at once: {code: (name, unit)} -> {code: item}."""
    codes = sorted(wanted)
    found = {item.code: item for item in Item.objects.filter(code__in=codes)}
    missing = [c for c in codes if c not in found]
    if missing:
        Item.objects.bulk_create(
            [Item(code=c, name=wanted[c][0], unit=wanted[c][1]) for c in missing],
            ignore_conflicts=True,  # created by a concurrent request: read below
        )
        found.update((item.code, item) for item in Item.objects.filter(code__in=missing))
    return found
