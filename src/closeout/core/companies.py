"""Companies (公司): organisation units marked as companies, each with its base currency, time
zone and fiscal calendar. Every unit belongs to its nearest company ancestor; a root unit is
always a company, so every unit has one. One lookup per concept: `company_get` by code,
`company_of` for a unit."""

import zoneinfo
from datetime import date

from django.conf import settings
from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput, NotFound
from closeout.core.models import Company, ExchangeRate, OrgUnit


def company_of(unit: OrgUnit) -> Company:
    """The unit's company: the nearest unit on its path (itself included) that is a company."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part] or [unit.pk]
    found = {c.unit_id: c for c in Company.objects.select_related("unit").filter(unit_id__in=ids)}
    for unit_id in reversed(ids):
        if unit_id in found:
            return found[unit_id]
    raise NotFound(
        gettext_noop("organisation unit '%(unit)s' belongs to no company"),
        params={"unit": unit.code},
        details={"org_unit": unit.code},
    )


def company_get(code: str) -> Company:
    company = Company.objects.select_related("unit").filter(unit__code=code).first()
    if company is None:
        raise NotFound(
            gettext_noop("no company with code '%(code)s'"),
            params={"code": code},
            details={"company": code},
        )
    return company


def companies() -> list[Company]:
    return list(Company.objects.select_related("unit").order_by("unit__code"))


def company_profile_add(
    unit: OrgUnit, *, currency: str = "", time_zone: str = "", fiscal_year_start_month: int = 1
) -> Company:
    """Mark `unit` a company (no permission check: for the org unit writes that make roots)."""
    return Company.objects.create(
        unit=unit,
        base_currency=currency or settings.CLOSEOUT_COMPANY_CURRENCY,
        time_zone=time_zone or settings.TIME_ZONE,
        fiscal_year_start_month=fiscal_year_start_month,
    )


def check_company_input(code: str, name: str, currency: str, time_zone: str, month: int) -> None:
    if not code.strip() or len(code) > 40:
        raise InvalidInput(
            gettext_noop("company code must be 1 to 40 characters"),
            params={},
            details={"field": "code"},
        )
    if not name.strip():
        raise InvalidInput(
            gettext_noop("company %(code)s: the name is empty"),
            params={"code": code},
            details={"field": "name"},
        )
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise InvalidInput(
            gettext_noop(
                "company %(code)s: currency '%(currency)s' is not a 3-letter code such as CNY"
            ),
            params={"code": code, "currency": currency},
            details={"field": "currency"},
        )
    if time_zone and time_zone not in zoneinfo.available_timezones():
        raise InvalidInput(
            gettext_noop("company %(code)s: unknown time zone '%(zone)s'"),
            params={"code": code, "zone": time_zone},
            details={"field": "time_zone"},
        )
    if not 1 <= month <= 12:
        raise InvalidInput(
            gettext_noop("company %(code)s: fiscal year start month must be 1 to 12"),
            params={"code": code},
            details={"field": "fiscal_year_start_month"},
        )


def rate_in_force(table: str, currency: str, to_currency: str, day: date) -> ExchangeRate | None:
    """The rate table's rate for the pair in force on `day`: its latest rate from that day or
    before (None when the table has none)."""
    return (
        ExchangeRate.objects.filter(
            table=table, currency=currency, to_currency=to_currency, day__lte=day
        )
        .order_by("-day")
        .first()
    )


def book_rate_table() -> str:
    """The rate table documents take their rate from when the ERP sends none
    (CLOSEOUT_BOOK_RATE_TABLE, default BOOK)."""
    return str(getattr(settings, "CLOSEOUT_BOOK_RATE_TABLE", "BOOK"))
