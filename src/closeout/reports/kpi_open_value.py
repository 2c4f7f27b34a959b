"""The KPIs of open value (definitions in kpis.py): the backlog of documents open today by age,
and the open value that manual closes released, by close reason and by partner.
"""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, CharField, Count, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from closeout.documents.models import CloseKind, CloseState, Document, Line
from closeout.reports.kpi_base import (
    CLOSED_STATES,
    KpiFilter,
    KpiTable,
    ReportScope,
    dates_in_period,
    document_condition,
    in_period,
    money,
)

BACKLOG_STATES = (CloseState.OPEN, CloseState.CLOSE_PENDING, CloseState.ON_HOLD)
# Age buckets of the backlog: (label, lowest age in days, highest age in days or None).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    (">180", 181, None),
)
TOP_PARTNERS = 10
NO_PARTNER = "-"


# --- backlog --------------------------------------------------------------------------------


def _age_bucket(today: date) -> Case:
    whens = []
    for label, low, high in AGE_BUCKETS:
        condition = Q(document_date__lte=today - timedelta(days=low))
        if high is not None:
            condition &= Q(document_date__gte=today - timedelta(days=high))
        whens.append(When(condition, then=Value(label)))
    return Case(*whens, default=Value(AGE_BUCKETS[0][0]), output_field=CharField())


def backlog_by_age(scope: ReportScope, kpi: KpiFilter, *, today: date | None = None) -> KpiTable:
    """Open documents today by age since the document date, per type: count and value."""
    today = today or timezone.localdate()
    rows = (
        Document.objects.filter(document_condition(scope, kpi))
        .filter(close_state__in=BACKLOG_STATES)
        .filter(dates_in_period("document_date", kpi))
        .annotate(bucket=_age_bucket(today))
        .values("doc_type", "bucket")
        .annotate(n=Count("pk"), value=Coalesce(Sum("total_amount_company"), Decimal(0)))
        .order_by()
    )
    found = {(r["doc_type"], r["bucket"]): (r["n"], r["value"]) for r in rows}
    order = {label: i for i, (label, _low, _high) in enumerate(AGE_BUCKETS)}
    return KpiTable(
        key="backlog",
        title=_("Backlog by age (days since document date)"),
        headers=[_("Type"), _("Age (days)"), _("Open documents"), _("Value (company currency)")],
        rows=[
            (doc_type, bucket, n, money(value))
            for (doc_type, bucket), (n, value) in sorted(
                found.items(), key=lambda item: (item[0][0], order[item[0][1]])
            )
        ],
    )


# --- released value ----------------------------------------------------------------------------


def _manual_lines(scope: ReportScope, kpi: KpiFilter) -> Any:
    return (
        Line.objects.filter(document_condition(scope, kpi, "document__"))
        .filter(close_state__in=CLOSED_STATES, close_kind=CloseKind.MANUAL)
        .filter(in_period("closed_at", kpi))
    )


def released_by_reason(scope: ReportScope, kpi: KpiFilter) -> KpiTable:
    """Open value released by manual closes, per close reason (company currency)."""
    rows = (
        _manual_lines(scope, kpi)
        .values("close_reason")
        .annotate(
            documents=Count("document_id", distinct=True),
            lines=Count("pk"),
            value=Sum("released_value_company"),
        )
        .order_by("-value", "close_reason")
    )
    return KpiTable(
        key="released_by_reason",
        title=_("Open value released by manual closes, by reason"),
        headers=[_("Close reason"), _("Documents"), _("Lines"), _("Released value")],
        rows=[(r["close_reason"], r["documents"], r["lines"], money(r["value"])) for r in rows],
    )


def released_by_partner(scope: ReportScope, kpi: KpiFilter, *, top: int = TOP_PARTNERS) -> KpiTable:
    """The partners whose manual closes released the most open value (company currency)."""
    rows = (
        _manual_lines(scope, kpi)
        .values("document__partner__code", "document__partner__name")
        .annotate(
            documents=Count("document_id", distinct=True),
            value=Sum("released_value_company"),
        )
        .order_by("-value", "document__partner__code")[:top]
    )
    return KpiTable(
        key="released_by_partner",
        title=_("Open value released by manual closes, top partners"),
        headers=[_("Partner"), _("Name"), _("Documents"), _("Released value")],
        rows=[
            (
                r["document__partner__code"] or NO_PARTNER,
                r["document__partner__name"] or "",
                r["documents"],
                money(r["value"]),
            )
            for r in rows
        ],
    )
