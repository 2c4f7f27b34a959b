"""Closing KPIs (S22) and the managers' closing report (S23): read-only selectors over documents,
lines, business events, approval decisions and the audit log. No table of their own.

Definitions (also in the help panel and README):

- *Fulfilment complete* is the business time (`occurred_at`) of the last business event applied
  to the document at or before its close. A document without event rows (its measures synced or
  generated in bulk) uses its last activity time instead, the clock the grace-days rule uses.
  Documents with neither before the close (nothing ever happened) have no cycle time.
- *Close cycle time* is `closed_at` − fulfilment complete, in days, over the documents that are
  closed now (closed, reopen pending or archived) with a close date in the period. A close that
  was reopened no longer counts: its document is open again.
- Medians and 90th percentiles are computed the way PostgreSQL's `percentile_cont` does (linear
  interpolation between the two nearest ranks), in Python over the durations fetched in one
  query ordered by group and duration. SQLite has no percentile function and the result must
  be the same on both databases, so one code path serves both; the query returns one narrow
  row per closed document, which stays small for the periods a manager looks at.
- *Close actions* (for the reopen rate) come from the audit log, since a reopen erases the close
  fields of the document: every `document_closed` event in the period is a close; every
  `document_reopened` event in the period is a reopen, charged to the user (and close reason)
  of the close it reverted, i.e. the latest `document_closed` event of that document before it.
- *Approval latency* of a step is the time from the step's start to its decision: the start is
  the previous step's decision in the same round, or the submission for the first step of the
  request's current round. The first step of an earlier round (before a resubmission) has no
  recorded start and counts in the pass rate only.
- *Backlog* is the documents open today (open, pending close approval or on hold), aged from
  their document date (always present; the expected date is optional) to today. The period
  filters the document date.
- *Released value* is the open value manual closes released, in company currency, summed over
  the lines closed by hand (line close fields), with the line's close time in the period.

Every selector is limited to the documents the viewer may see in reports: the organisation
subtrees (and document types) of their grants whose role includes `report.view`.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Coalesce, Lag, TruncMonth
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import grants_of
from closeout.access.services import require
from closeout.approvals.models import ApprovalDecision, Decision
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.services import SYSTEM_ACTOR
from closeout.core.doctypes import doc_type_codes
from closeout.core.errors import InvalidInput
from closeout.core.inputs import check_date
from closeout.core.models import OrgUnit
from closeout.documents.models import (
    BusinessEvent,
    CloseKind,
    CloseState,
    Document,
    EventStatus,
    Line,
)

# Documents whose current close stands (a reopen pending approval is still closed).
CLOSED_STATES = (CloseState.CLOSED, CloseState.REOPEN_PENDING, CloseState.ARCHIVED)
BACKLOG_STATES = (CloseState.OPEN, CloseState.CLOSE_PENDING, CloseState.ON_HOLD)
# Age buckets of the backlog: (label, lowest age in days, highest age in days or None).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    (">180", 181, None),
)
# Cycle-time histogram bins in days: [low, high).
CYCLE_BINS: tuple[tuple[str, float, float | None], ...] = (
    ("<1", 0, 1),
    ("1-7", 1, 7),
    ("7-30", 7, 30),
    ("30-90", 30, 90),
    (">=90", 90, None),
)
TOP_PARTNERS = 10
SYSTEM_USER = SYSTEM_ACTOR  # how the audit log names closes without a user (the sweep)
NO_PARTNER = "-"


@dataclass(frozen=True)
class KpiFilter:
    """What the manager asked for; every part optional."""

    date_from: date | None = None
    date_to: date | None = None
    doc_type: str = ""
    org_unit: OrgUnit | None = None

    def __post_init__(self) -> None:
        if self.doc_type and self.doc_type not in doc_type_codes():
            raise InvalidInput(
                gettext_noop("unknown document type '%(doc_type)s'; use one of: %(allowed)s"),
                params={"doc_type": self.doc_type, "allowed": ", ".join(doc_type_codes())},
                details={"field": "type"},
            )
        check_date(self.date_from, field="date_from")
        check_date(self.date_to, field="date_to")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput(
                gettext_noop("the period starts (%(start)s) after it ends (%(end)s)"),
                params={"start": self.date_from, "end": self.date_to},
                details={"field": "date_from"},
            )


@dataclass(frozen=True)
class KpiTable:
    """One KPI as a table: the dashboard, the CLI and the exports all show these."""

    key: str
    title: str | Promise
    headers: Sequence[str | Promise]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


# --- scope ---------------------------------------------------------------------------------


def _q(prefix: str, **lookups: Any) -> Q:
    return Q(**{f"{prefix}{name}": value for name, value in lookups.items()})


@dataclass(frozen=True)
class ReportScope:
    """What one viewer may see in reports: (organisation path, document types or empty for
    all) per grant whose role includes `report.view`. Read once per report."""

    grants: tuple[tuple[str, tuple[str, ...]], ...]

    def condition(self, prefix: str = "") -> Q:
        """A condition on Document (or, with a prefix such as "document__", on a model that
        points at one)."""
        condition = _q(prefix, pk__in=[])
        for path, doc_types in self.grants:
            scope = _q(prefix, org_unit__path__startswith=path)
            if doc_types:
                scope &= _q(prefix, doc_type__in=list(doc_types))
            condition |= scope
        return condition


def report_scope(viewer: AbstractBaseUser) -> ReportScope:
    return ReportScope(
        tuple(
            (grant.org_unit.path, tuple(grant.doc_types or ()))
            for grant in grants_of(viewer)
            if Perm.REPORT_VIEW in grant.role.all_permissions()
        )
    )


def document_condition(scope: ReportScope, kpi: KpiFilter, prefix: str = "") -> Q:
    """The viewer's scope narrowed by the filter's type and organisation (with descendants)."""
    condition = scope.condition(prefix)
    if kpi.doc_type:
        condition &= _q(prefix, doc_type=kpi.doc_type)
    if kpi.org_unit is not None:
        condition &= _q(prefix, org_unit__path__startswith=kpi.org_unit.path)
    return condition


def _moments(kpi: KpiFilter) -> tuple[datetime | None, datetime | None]:
    """The period as [start, end) instants: local midnights of `date_from` and `date_to` + 1."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(kpi.date_from, time.min, tz) if kpi.date_from else None
    end = datetime.combine(kpi.date_to + timedelta(days=1), time.min, tz) if kpi.date_to else None
    return start, end


def _in_period(name: str, kpi: KpiFilter) -> Q:
    start, end = _moments(kpi)
    condition = Q()
    if start is not None:
        condition &= Q(**{f"{name}__gte": start})
    if end is not None:
        condition &= Q(**{f"{name}__lt": end})
    return condition


def _dates_in_period(name: str, kpi: KpiFilter) -> Q:
    condition = Q()
    if kpi.date_from:
        condition &= Q(**{f"{name}__gte": kpi.date_from})
    if kpi.date_to:
        condition &= Q(**{f"{name}__lte": kpi.date_to})
    return condition


# --- small arithmetic ----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the nearest ranks."""
    if not sorted_values:
        return None
    rank = fraction * (len(sorted_values) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def money(value: Decimal | None) -> Decimal:
    """A sum in company currency to the cent (SQLite's sums carry float noise)."""
    return Decimal(value or 0).quantize(Decimal("0.01"))


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# --- close cycle time ----------------------------------------------------------------------


CYCLE_GROUPS = {
    "doc_type": ("doc_type", _("Type")),
    "org_unit": ("org_unit__code", _("Organisation")),
    "closed_by": ("closed_by__username", _("Closed by")),
}


def _cycle_durations(scope: ReportScope, kpi: KpiFilter) -> list[tuple[Any, ...]]:
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
        .filter(_dates_in_period("close_date", kpi))
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
        durations = _cycle_durations(scope, kpi)
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
        durations = _cycle_durations(scope, kpi)
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
        .filter(_dates_in_period("close_date", kpi))
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
        _in_period("at", kpi),
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


# --- approvals ------------------------------------------------------------------------------


def approval_steps(scope: ReportScope, kpi: KpiFilter) -> KpiTable:
    """Per approval step: decisions, approvals, pass rate, median and p90 latency (hours)."""
    previous = Window(
        expression=Lag("decided_at"),
        partition_by=[F("request_id"), F("round")],
        order_by=F("step_order").asc(),
    )
    # The window sees every decision of the requests decided in the period, so a step's start
    # may lie before the period; the decisions themselves are then kept to the period below.
    decided_in_period = ApprovalDecision.objects.filter(_in_period("decided_at", kpi)).values(
        "request_id"
    )
    rows = (
        ApprovalDecision.objects.filter(document_condition(scope, kpi, "request__document__"))
        .filter(request_id__in=decided_in_period)
        .annotate(previous_at=previous)
        .values_list(
            "step_order",
            "step_name",
            "decision",
            "decided_at",
            "previous_at",
            "round",
            "request__round",
            "request__submitted_at",
        )
        .order_by("step_order", "step_name")
    )
    start_at, end_at = _moments(kpi)
    stats: dict[tuple[int, str], tuple[list[int], list[float]]] = {}
    for order, name, decision, decided, prev, rnd, current_round, submitted in rows:
        if (start_at and decided < start_at) or (end_at and decided >= end_at):
            continue
        passed, latencies = stats.setdefault((order, name), ([0, 0], []))
        passed[0] += 1
        passed[1] += decision == Decision.APPROVE
        start = prev if prev is not None else (submitted if rnd == current_round else None)
        if start is not None:
            latencies.append(days_between(start, decided) * 24)
    table: list[tuple[Any, ...]] = []
    for (order, name), ((decided_n, approved), latencies) in sorted(stats.items()):
        latencies.sort()
        table.append(
            (
                order,
                name,
                decided_n,
                approved,
                rounded(ratio(approved, decided_n), 4),
                rounded(percentile(latencies, 0.5)),
                rounded(percentile(latencies, 0.9)),
            )
        )
    return KpiTable(
        key="approval_steps",
        title=_("Approval pass rate and latency by step"),
        headers=[
            _("Step"),
            _("Step name"),
            _("Decisions"),
            _("Approved"),
            _("Pass rate"),
            _("Median latency (hours)"),
            _("90th percentile latency (hours)"),
        ],
        rows=table,
    )


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
        .filter(_dates_in_period("document_date", kpi))
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
        .filter(_in_period("closed_at", kpi))
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


# --- the whole report --------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiReport:
    kpi: KpiFilter
    tables: list[KpiTable]

    def table(self, key: str) -> KpiTable:
        for table in self.tables:
            if table.key == key:
                return table
        raise InvalidInput(
            gettext_noop("unknown report table '%(key)s'; use one of: %(allowed)s"),
            params={"key": key, "allowed": ", ".join(t.key for t in self.tables)},
            details={"field": "table"},
        )


def kpi_report(viewer: AbstractBaseUser, kpi: KpiFilter) -> KpiReport:
    """Every KPI for the viewer and filter; refused without `report.view`."""
    from closeout.reports.dimension_kpi import dimension_share

    require(viewer, Perm.REPORT_VIEW, what=str(_("the reports")))
    scope = report_scope(viewer)
    durations = _cycle_durations(scope, kpi)
    return KpiReport(
        kpi=kpi,
        tables=[
            *(
                close_cycle_time(scope, kpi, by=by, durations=durations)
                for by in ("doc_type", "org_unit", "closed_by")
            ),
            close_cycle_histogram(scope, kpi, durations=durations),
            close_kind_share(scope, kpi),
            reopen_rate(scope, kpi, by="closed_by"),
            reopen_rate(scope, kpi, by="reason"),
            approval_steps(scope, kpi),
            backlog_by_age(scope, kpi),
            released_by_reason(scope, kpi),
            released_by_partner(scope, kpi),
            dimension_share(scope, kpi),
        ],
    )


__all__ = [
    "AGE_BUCKETS",
    "CYCLE_BINS",
    "KpiFilter",
    "KpiReport",
    "KpiTable",
    "approval_steps",
    "backlog_by_age",
    "close_cycle_histogram",
    "close_cycle_time",
    "close_kind_share",
    "document_condition",
    "kpi_report",
    "percentile",
    "released_by_partner",
    "released_by_reason",
    "reopen_rate",
    "report_scope",
]
