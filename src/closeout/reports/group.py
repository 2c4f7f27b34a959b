"""The group view over several companies (集团): each company's document totals and released
values in its base currency, converted to a group currency at a stated rate table, naming every
rate used. Only the documents the viewer may see in reports count, so a user granted on one
company sees one company."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require
from closeout.core.companies import rate_in_force
from closeout.core.errors import InvalidInput
from closeout.core.models import Company, ExchangeRate
from closeout.core.money import round_amount
from closeout.documents.models import CloseState, Document

RATE_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class CompanyFigures:
    code: str
    name: str
    base_currency: str
    documents: int
    open_documents: int
    total: Decimal  # in the base currency
    released: Decimal  # in the base currency
    # 1 base currency = rate group currency; None when the rate table has no rate for it (the
    # company is then left out of the group totals and named among the missing rates).
    rate: Decimal | None
    group_total: Decimal | None
    group_released: Decimal | None


@dataclass
class GroupReport:
    currency: str
    table: str
    as_of: date
    companies: list[CompanyFigures] = field(default_factory=list)
    rates_used: list[str] = field(default_factory=list)
    # "USD→CNY": pairs the table has no rate for on or before `as_of`.
    rates_missing: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((c.group_total or Decimal(0) for c in self.companies), Decimal(0))

    @property
    def released(self) -> Decimal:
        return sum((c.group_released or Decimal(0) for c in self.companies), Decimal(0))

    @property
    def complete(self) -> bool:
        """Every company converted: the group totals cover them all."""
        return not self.rates_missing


def group_report(
    *, actor: AbstractBaseUser, currency: str, table: str, as_of: date | None = None
) -> GroupReport:
    """Per company the viewer may see: documents, open documents, total and released value in
    base currency and in `currency` at `table`'s rate on `as_of` (default today). A company
    whose rate the table lacks keeps its own figures, is left out of the group totals and
    its pair is named in `rates_missing`."""
    require(actor, Perm.REPORT_VIEW, what=str(_("the group view")))
    check_currency(currency, field="currency")
    if not table.strip() or len(table) > 40:
        raise InvalidInput(
            gettext_noop("the rate table name must be 1 to 40 characters"),
            params={},
            details={"field": "rates"},
        )
    day = as_of or timezone.localdate()
    report = GroupReport(currency=currency, table=table, as_of=day)
    rows = (
        Document.objects.filter(documents_visible_to(actor, Perm.REPORT_VIEW))
        .values("company_id")
        .annotate(
            n=Count("id"),
            open=Count("id", filter=Q(close_state=CloseState.OPEN)),
            total=Sum("total_amount_company"),
            released=Sum("released_value_company"),
        )
        .order_by()
    )
    by_company = {row["company_id"]: row for row in rows}
    for company in Company.objects.select_related("unit").filter(pk__in=by_company):
        row = by_company[company.pk]
        rate: Decimal | None = Decimal(1)
        if company.base_currency != currency:
            used = rate_in_force(table, company.base_currency, currency, day)
            if used is None:
                rate = None
                report.rates_missing.append(f"{company.base_currency}→{currency}")
            else:
                rate = used.rate
                report.rates_used.append(str(used))
        base = company.base_currency
        total = round_amount(row["total"] or Decimal(0), base)
        released = round_amount(row["released"] or Decimal(0), base)
        report.companies.append(
            CompanyFigures(
                code=company.code,
                name=company.name,
                base_currency=company.base_currency,
                documents=row["n"],
                open_documents=row["open"],
                total=total,
                released=released,
                rate=rate,
                group_total=None if rate is None else round_amount(total * rate, currency),
                group_released=None if rate is None else round_amount(released * rate, currency),
            )
        )
    report.companies.sort(key=lambda c: c.code)
    report.rates_used = sorted(set(report.rates_used))
    report.rates_missing = sorted(set(report.rates_missing))
    return report


def check_currency(code: str, *, field: str) -> None:
    if len(code) != 3 or not code.isalpha() or not code.isupper():
        raise InvalidInput(
            gettext_noop("%(field)s '%(code)s' is not a 3-letter code such as CNY"),
            params={"field": field, "code": code},
            details={"field": field},
        )


def exchange_rate_set(
    *,
    actor: AbstractBaseUser | None,
    table: str,
    currency: str,
    to_currency: str,
    day: date,
    rate: Decimal,
) -> ExchangeRate:
    """Add or change one rate of a rate table; needs policy.manage over every company;
    audited with the rate before and after."""
    from closeout.access.services import require_company_wide
    from closeout.audit.models import AuditAction, AuditObject
    from closeout.audit.services import audit_record

    if actor is not None:
        require_company_wide(actor, Perm.POLICY_MANAGE, what=f"rate table {table}")
    for name, code in (("currency", currency), ("to_currency", to_currency)):
        check_currency(code, field=name)
    if not table.strip() or len(table) > 40:
        raise InvalidInput(
            gettext_noop("the rate table name must be 1 to 40 characters"),
            params={},
            details={"field": "table"},
        )
    if rate <= 0 or rate != rate.quantize(RATE_PLACES) or rate >= Decimal(10) ** 10:
        raise InvalidInput(
            gettext_noop("rate %(rate)s must be above 0, below 10^10, with at most 8 decimals"),
            params={"rate": rate},
            details={"field": "rate"},
        )
    with transaction.atomic():
        found = (
            ExchangeRate.objects.select_for_update()
            .filter(table=table, currency=currency, to_currency=to_currency, day=day)
            .first()
        )
        before = found.rate if found is not None else None
        if found is None:
            found = ExchangeRate(table=table, currency=currency, to_currency=to_currency, day=day)
        found.rate = rate
        found.save()
        audit_record(
            actor=actor,
            action=AuditAction.EXCHANGE_RATE_SET,
            object_type=AuditObject.EXCHANGE_RATE,
            object_id=found.pk,
            object_repr=str(found),
            data={"before": before, "after": rate},
        )
    return found
