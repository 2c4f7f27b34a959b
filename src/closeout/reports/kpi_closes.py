"""The KPIs of closes (definitions in kpis.py): close cycle time from fulfilment complete to the
close (by type, organisation and user, and as a histogram), the share of automatic and manual
closes per month, and the reopen rate read from the audit log.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import CharField, Count, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Coalesce, TruncMonth
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.core.errors import InvalidInput
from closeout.documents.models import BusinessEvent, CloseKind, Document, EventStatus
from closeout.reports.kpi_base import (
    CLOSED_STATES,
    SYSTEM_USER,
    KpiFilter,
    KpiTable,
    ReportScope,
    dates_in_period,
    days_between,
    document_condition,
    in_period,
    percentile,
    ratio,
    rounded,
)

# Cycle-time histogram bins in days: [low, high).
CYCLE_BINS: tuple[tuple[str, float, float | None], ...] = (
    ("<1", 0, 1),
    ("1-7", 1, 7),
    ("7-30", 7, 30),
    ("30-90", 30, 90),
    (">=90", 90, None),
)


# --- close cycle time ----------------------------------------------------------------------


CYCLE_GROUPS = {
    "doc_type": ("doc_type", _("Type")),
    "org_unit": ("org_unit__code", _("Organisation")),
    "closed_by": ("closed_by__username", _("Closed by")),
}


def cycle_durations(scope: ReportScope, kpi: KpiFilter) -> list[tuple[Any, ...]]:
    """(doc_type, org unit code, closer, days) per closed document with a fulfilment time."""
    fulfilled = (
        BusinessEvent.objects.filter(
            document_id=OuterRef("pk"),
            status=EventStatus.APPLIED,
            occurred_at__lte=OuterRef("closed_at"),
        )
        .values("document_id")
        .annotate(last=Max("occurred_at"))
        .values("last")[:1]
    )
    rows = (
        Document.objects.filter(document_condition(scope, kpi))
        .filter(close_state__in=CLOSED_STATES, closed_at__isnull=False)
        .filter(dates_in_period("close_date", kpi))
        .annotate(fulfilled_at=Coalesce(Subquery(fulfilled), F("last_activity_at")))
        .filter(fulfilled_at__lte=F("closed_at"))
        .values_list(
            "doc_type", "org_unit__code", "closed_by__username", "fulfilled_at", "closed_at"
        )
    )
    return [
        (doc_type, unit, closer or SYSTEM_USER, days_between(start, end))
        for doc_type, unit, closer, start, end in rows
        if end is not None  # filtered above; narrows the type
    ]


def _duration_stats(key: Any, values: list[float]) -> tuple[Any, ...]:
    values.sort()
    return (
        key,
        len(values),
        rounded(percentile(values, 0.5)),
        rounded(percentile(values, 0.9)),
    )


def _grouped_stats(pairs: Iterable[tuple[Any, float]]) -> list[tuple[Any, ...]]:
    groups: dict[Any, list[float]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return [_duration_stats(key, groups[key]) for key in sorted(groups)]


def close_cycle_time(
    scope: ReportScope,
    kpi: KpiFilter,
    *,
    by: str = "doc_type",
    durations: list[tuple[Any, ...]] | None = None,
) -> KpiTable:
    """Days from fulfilment complete to close: count, median and p90 per group. `durations`
    lets the whole report fetch them once for every grouping."""
    if by not in CYCLE_GROUPS:
        raise InvalidInput(
            gettext_noop("unknown grouping '%(by)s'; use one of: %(allowed)s"),
            params={"by": by, "allowed": ", ".join(CYCLE_GROUPS)},
        )
    index = list(CYCLE_GROUPS).index(by)
    if durations is None:
        durations = cycle_durations(scope, kpi)
    return KpiTable(
        key=f"cycle_by_{by}",
        title={
            "doc_type": _("Close cycle time by type (days)"),
            "org_unit": _("Close cycle time by organisation (days)"),
            "closed_by": _("Close cycle time by user who closed (days)"),
        }[by],
        headers=[CYCLE_GROUPS[by][1], _("Closes"), _("Median"), _("90th percentile")],
        rows=_grouped_stats((row[index], row[3]) for row in durations),
    )


def close_cycle_histogram(
    scope: ReportScope, kpi: KpiFilter, *, durations: list[tuple[Any, ...]] | None = None
) -> KpiTable:
    """How many closes took how long (days), in fixed bins."""
    if durations is None:
        durations = cycle_durations(scope, kpi)
    counts = dict.fromkeys((label for label, _low, _high in CYCLE_BINS), 0)
    for *_keys, days in durations:
        for label, low, high in CYCLE_BINS:
            if days >= low and (high is None or days < high):
                counts[label] += 1
                break
    return KpiTable(
        key="cycle_histogram",
        title=_("Close cycle time distribution"),
        headers=[_("Days"), _("Closes")],
        rows=list(counts.items()),
    )


# --- automatic vs manual ----------------------------------------------------------------------


def close_kind_share(scope: ReportScope, kpi: KpiFilter) -> KpiTable:
    """Automatic and manual closes per type and month of the close date."""
    rows = (
        Document.objects.filter(document_condition(scope, kpi))
        .filter(close_state__in=CLOSED_STATES, close_date__isnull=False)
        .filter(dates_in_period("close_date", kpi))
        .annotate(month=TruncMonth("close_date"))
        .values("doc_type", "month")
        .annotate(
            auto=Count("pk", filter=Q(close_kind=CloseKind.AUTO)),
            manual=Count("pk", filter=Q(close_kind=CloseKind.MANUAL)),
        )
        .order_by("doc_type", "month")
    )
    return KpiTable(
        key="close_kind",
        title=_("Automatic and manual closes"),
        headers=[_("Type"), _("Month"), _("Automatic"), _("Manual"), _("Automatic share")],
        rows=[
            (
                r["doc_type"],
                r["month"].strftime("%Y-%m"),
                r["auto"],
                r["manual"],
                rounded(ratio(r["auto"], r["auto"] + r["manual"]), 4),
            )
            for r in rows
        ],
    )


# --- reopen rate ----------------------------------------------------------------------------


def _audit_in_scope(scope: ReportScope, kpi: KpiFilter, action: AuditAction) -> Any:
    """Audit events of one action on documents in scope, within the period. The audit stores
    the document id as text: it is compared as text, so no row of another object type is ever
    cast to a number."""
    documents = (
        Document.objects.filter(document_condition(scope, kpi))
        .annotate(text_id=Cast("pk", CharField()))
        .values("text_id")
    )
    return AuditEvent.objects.filter(
        in_period("at", kpi),
        object_type=AuditObject.DOCUMENT,
        action=int(action),
        object_id__in=documents,
    )


def _reopens_with_close(scope: ReportScope, kpi: KpiFilter) -> Any:
    reverted = AuditEvent.objects.filter(
        object_type=AuditObject.DOCUMENT,
        object_id=OuterRef("object_id"),
        action=int(AuditAction.DOCUMENT_CLOSED),
        seq__lt=OuterRef("seq"),
    ).order_by("-seq")
    return _audit_in_scope(scope, kpi, AuditAction.DOCUMENT_REOPENED).annotate(
        closer=Subquery(reverted.values("actor_name")[:1]),
        close_reason=Subquery(reverted.values("reason")[:1]),
    )


def _rate_rows(closes: dict[str, int], reopens: dict[str, int]) -> list[tuple[Any, ...]]:
    return [
        (
            key,
            closes.get(key, 0),
            reopens.get(key, 0),
            rounded(ratio(reopens.get(key, 0), closes.get(key, 0)), 4),
        )
        for key in sorted(set(closes) | set(reopens))
    ]


def reopen_rate(scope: ReportScope, kpi: KpiFilter, *, by: str = "closed_by") -> KpiTable:
    """Reopens / closes in the period, per user who closed or per close reason."""
    if by not in ("closed_by", "reason"):
        raise InvalidInput(
            gettext_noop("unknown grouping '%(by)s'; use closed_by or reason"),
            params={"by": by},
        )
    close_key, reopen_key = (
        ("actor_name", "closer") if by == "closed_by" else ("reason", "close_reason")
    )
    closes = {
        row[close_key]: row["n"]
        for row in _audit_in_scope(scope, kpi, AuditAction.DOCUMENT_CLOSED)
        .values(close_key)
        .annotate(n=Count("pk"))
        .order_by()
    }
    reopens = {
        row[reopen_key] or "": row["n"]
        for row in _reopens_with_close(scope, kpi)
        .values(reopen_key)
        .annotate(n=Count("pk"))
        .order_by()
    }
    return KpiTable(
        key=f"reopen_by_{by}",
        title=_("Reopen rate by user who closed")
        if by == "closed_by"
        else _("Reopen rate by close reason"),
        headers=[
            _("Closed by") if by == "closed_by" else _("Close reason"),
            _("Closes"),
            _("Reopens"),
            _("Reopen rate"),
        ],
        rows=_rate_rows(closes, reopens),
    )
