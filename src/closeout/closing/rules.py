"""Closing rules (结案条件).

A rule is defined once, as a database condition that is true where the rule FAILS, plus named
measured values, both Django expressions. The same objects serve the set-based sweep and the
"ready to close" filters (as EXISTS predicates) and the per-document checklist (as annotations
on the document's own rows), so there is never a second implementation of a rule.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db.models import (
    Case,
    DecimalField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Abs, Coalesce, Greatest
from django.db.models.lookups import GreaterThan, LessThan
from django.utils import timezone

from closeout.closing.models import ClosePolicy, LineDimensionClose, Severity
from closeout.documents.models import (
    LINE_STATES_NOT_CLOSED,
    BusinessEvent,
    EventStatus,
    Line,
)

_DEC = DecimalField(max_digits=38, decimal_places=10)
# Quantities have 4 decimals and tolerances 3; this margin only absorbs SQLite's binary floats.
EPS = Value(Decimal("0.0000001"), output_field=_DEC)


def dec(value: Decimal | int | str) -> Value:
    return Value(Decimal(value), output_field=_DEC)


def num(expr: Expression | F) -> ExpressionWrapper[Any]:
    return ExpressionWrapper(expr, output_field=_DEC)


def more_than(left: Expression | F, right: Expression | F) -> Q:
    return Q(GreaterThan(num(left), num(right) + EPS))


def less_than(left: Expression | F, right: Expression | F) -> Q:
    return Q(LessThan(num(left), num(right) - EPS))


class Scope(StrEnum):
    LINE = "line"
    DOCUMENT = "document"


Measures = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    code: str
    label_zh: str
    label_en: str
    severity: Severity
    scope: Scope
    # Condition over Line (scope LINE) or Document (scope DOCUMENT) rows: true where it fails.
    failing: Callable[[ClosePolicy], Q]
    measures: Callable[[ClosePolicy], Measures]
    threshold: Callable[[ClosePolicy], str]
    hint_zh: str
    hint_en: str
    auto_only: bool = False
    # A condition on Line rows (scope LINE) under which the rule passes whatever the policy
    # (its tolerances are never negative): a settled line. The what-if evaluates it once per
    # line for every rule that declares one and skips their conditions, for both policies, on
    # the lines it holds for (most lines of documents waiting to close).
    passes_when: Q | None = None

    def label(self, lang: str = "zh") -> str:
        return self.label_en if lang.startswith("en") else self.label_zh

    def hint(self, lang: str = "zh") -> str:
        return self.hint_en if lang.startswith("en") else self.hint_zh

    def document_failing(self, policy: ClosePolicy) -> Q:
        """The rule as a condition on Document rows (for sweeps and queue filters)."""
        if self.scope is Scope.DOCUMENT:
            return self.failing(policy)
        lines = Line.objects.filter(document_id=OuterRef("pk"), close_state__in=LINE_SCOPE).filter(
            self.failing(policy)
        )
        return Q(Exists(lines))


# Lines a close still has to decide about.
LINE_SCOPE = LINE_STATES_NOT_CLOSED


def _pct(value: Decimal) -> str:
    return f"{value.normalize():f}"


# --- line measures shared by several types -------------------------------------------------


def open_qty_expr() -> Expression:
    """Unfulfilled remainder of a line: what a close releases from commitments."""
    return Greatest(num(F("planned_qty") - F("fulfilled_qty")), dec(0))


def fulfilled_value_expr() -> Expression:
    return num(F("fulfilled_qty") * F("unit_price"))


# --- rule factories ------------------------------------------------------------------------


def _closed_in(dimension: str) -> Q:
    """True on Line rows closed in the close dimension (关闭维度) `dimension`."""
    return Q(Exists(LineDimensionClose.objects.filter(line_id=OuterRef("pk"), dimension=dimension)))


def fulfilled_within_under_tolerance(
    code: str,
    zh: str,
    en: str,
    what_zh: str,
    what_en: str,
    severity: Severity = Severity.EXCEPTION,
    *,
    accepted_by: str = "",
) -> Rule:
    """Fulfilled within the under-delivery tolerance, per line. A line closed in the dimension
    `accepted_by` (a PO line closed for receiving) passes: that close accepted its shortfall,
    measured as `short_accepted_<dimension>`."""

    def failing(p: ClosePolicy) -> Q:
        short = less_than(
            F("fulfilled_qty") * dec(100), F("planned_qty") * dec(100 - p.under_qty_pct)
        )
        return short & ~_closed_in(accepted_by) if accepted_by else short

    def measures(p: ClosePolicy) -> Measures:
        values: Measures = {"planned": F("planned_qty"), "fulfilled": F("fulfilled_qty")}
        if accepted_by:
            values[f"short_accepted_{accepted_by}"] = Case(
                When(_closed_in(accepted_by), then=open_qty_expr()),
                default=dec(0),
                output_field=_DEC,
            )
        return values

    return Rule(
        code=code,
        label_zh=zh,
        label_en=en,
        severity=severity,
        scope=Scope.LINE,
        failing=failing,
        measures=measures,
        threshold=lambda p: f"{what_en} ≥ {_pct(100 - p.under_qty_pct)}% of planned, per line",
        passes_when=Q(fulfilled_qty__gte=F("planned_qty"), planned_qty__gte=0),
        hint_zh=f"等待{what_zh}，或以短交原因手工结案（例外审批）。",
        hint_en=f"Wait for the remaining {what_en}, or close by hand with a short-delivery reason.",
    )


def fulfilled_within_over_tolerance(
    code: str, zh: str, en: str, what_zh: str, what_en: str, severity: Severity = Severity.EXCEPTION
) -> Rule:
    return Rule(
        code=code,
        label_zh=zh,
        label_en=en,
        severity=severity,
        scope=Scope.LINE,
        failing=lambda p: more_than(
            F("fulfilled_qty") * dec(100), F("planned_qty") * dec(100 + p.over_qty_pct)
        ),
        measures=lambda p: {"planned": F("planned_qty"), "fulfilled": F("fulfilled_qty")},
        threshold=lambda p: f"{what_en} ≤ {_pct(100 + p.over_qty_pct)}% of planned, per line",
        passes_when=Q(fulfilled_qty__lte=F("planned_qty"), planned_qty__gte=0),
        hint_zh=f"核对超量{what_zh}：退回多余部分或确认接受后手工结案。",
        hint_en=f"Check the excess {what_en}: return it, or accept it and close by hand.",
    )


def invoiced_qty_matches(code: str, what_en: str) -> Rule:
    return Rule(
        code=code,
        label_zh="开票数量与实收/实发一致",
        label_en=f"Invoiced quantity matches {what_en}",
        severity=Severity.EXCEPTION,
        scope=Scope.LINE,
        failing=lambda p: more_than(
            Abs(num(F("invoiced_qty") - F("fulfilled_qty"))) * dec(100),
            F("fulfilled_qty") * dec(p.match_qty_pct),
        ),
        measures=lambda p: {"fulfilled": F("fulfilled_qty"), "invoiced": F("invoiced_qty")},
        threshold=lambda p: f"|invoiced − {what_en}| ≤ {_pct(p.match_qty_pct)}%, per line",
        passes_when=Q(invoiced_qty=F("fulfilled_qty"), fulfilled_qty__gte=0),
        hint_zh="等待发票或红字发票，使开票数量与实际数量一致。",
        hint_en="Wait for the invoice or credit note that makes invoiced equal to actual quantity.",
    )


def invoiced_amount_matches(code: str, what_en: str) -> Rule:
    return Rule(
        code=code,
        label_zh="开票金额与实收/实发金额一致",
        label_en=f"Invoiced amount matches {what_en} value",
        severity=Severity.EXCEPTION,
        scope=Scope.LINE,
        # Scaled by 100 instead of dividing: SQLite divides integers as integers.
        failing=lambda p: more_than(
            Abs(num(F("invoiced_amount") - fulfilled_value_expr())) * dec(100),
            Greatest(
                dec(p.amount_tolerance_abs * 100),
                fulfilled_value_expr() * dec(p.amount_tolerance_pct),
            ),
        ),
        measures=lambda p: {
            "fulfilled_value": fulfilled_value_expr(),
            "invoiced_amount": F("invoiced_amount"),
        },
        threshold=lambda p: (
            f"|invoiced − {what_en} value| ≤ max({_pct(p.amount_tolerance_abs)}, "
            f"{_pct(p.amount_tolerance_pct)}%), per line"
        ),
        passes_when=Q(invoiced_amount=fulfilled_value_expr()),
        hint_zh="核对发票金额与单价，必要时开具红字发票。",
        hint_en="Check invoice amount and unit price; issue a credit note if needed.",
    )


def invoice_settled(code: str, zh: str, en: str) -> Rule:
    return Rule(
        code=code,
        label_zh=zh,
        label_en=en,
        severity=Severity.EXCEPTION,
        scope=Scope.LINE,
        failing=lambda p: more_than(
            F("invoiced_amount") - F("settled_amount"), dec(p.amount_tolerance_abs)
        ),
        measures=lambda p: {
            "invoiced_amount": F("invoiced_amount"),
            "settled": F("settled_amount"),
        },
        threshold=lambda p: f"invoiced − settled ≤ {_pct(p.amount_tolerance_abs)}, per line",
        passes_when=Q(settled_amount__gte=F("invoiced_amount")),
        hint_zh="等待付款/收款完成，或在策略中关闭此检查。",
        hint_en="Wait for the payment, or switch this check off in the policy.",
    )


def no_open_returns() -> Rule:
    return Rule(
        code="no_open_returns",
        label_zh="无未清退货",
        label_en="No open returns",
        severity=Severity.BLOCKING,
        scope=Scope.LINE,
        failing=lambda p: more_than(F("returns_open_qty"), dec(0)),
        measures=lambda p: {"open_returns": F("returns_open_qty")},
        threshold=lambda p: "open returns = 0",
        passes_when=Q(returns_open_qty__lte=0),
        hint_zh="为退货开具红字发票后再结案。",
        hint_en="Issue the credit note for the returned goods first.",
    )


def no_line_on_hold() -> Rule:
    return Rule(
        code="no_line_on_hold",
        label_zh="无冻结或审批中的行",
        label_en="No line on hold or pending approval",
        severity=Severity.BLOCKING,
        scope=Scope.LINE,
        # close_state in (on_hold, close_pending), as the indexed flag derived from it
        failing=lambda p: Q(on_hold_or_pending=True),
        measures=lambda p: {},
        threshold=lambda p: "every line open",
        passes_when=Q(on_hold_or_pending=False),
        hint_zh="先解冻该行，或等待其结案审批完成。",
        hint_en="Release the line first, or wait for its close approval.",
    )


def _event_count(
    statuses: tuple[str, ...], kinds: tuple[str, ...] | None, exclude: bool
) -> "QuerySet[BusinessEvent]":
    events = BusinessEvent.objects.filter(document_id=OuterRef("pk"), status__in=statuses)
    if kinds:
        events = events.exclude(kind__in=kinds) if exclude else events.filter(kind__in=kinds)
    return events


def events_settled(exclude_kinds: tuple[str, ...] = ()) -> Rule:
    unsettled = (EventStatus.PENDING, EventStatus.QUARANTINED)

    def count(status: str) -> Expression:
        events = _event_count((status,), exclude_kinds or None, exclude=True)
        return Coalesce(
            Subquery(events.values("document_id").annotate(n=Sum(dec(1))).values("n")), dec(0)
        )

    return Rule(
        code="events_settled",
        label_zh="无待确认或隔离的业务",
        label_en="No pending or quarantined business events",
        severity=Severity.BLOCKING,
        scope=Scope.DOCUMENT,
        failing=lambda p: Q(Exists(_event_count(unsettled, exclude_kinds or None, exclude=True))),
        measures=lambda p: {
            "pending": count(EventStatus.PENDING),
            "quarantined": count(EventStatus.QUARANTINED),
        },
        threshold=lambda p: "pending = 0 and quarantined = 0",
        hint_zh="确认待确认业务；隔离业务需先反结案或解冻后处理。",
        hint_en="Confirm pending events; quarantined ones apply after reopen or release.",
    )


def grace_clock() -> Expression:
    """When a document's grace days start: the later of its last business activity (its
    creation when it has none) and its last reopen, so a document reopened years after its
    last activity is not closed again by the next sweep. The one definition behind the
    grace_period rule (sweep, queue, checklist) and the "complete but open" alert."""
    activity = Coalesce("last_activity_at", "created_at")
    # Both sides are non-null: SQLite's MAX() of a NULL is NULL, PostgreSQL's GREATEST skips it.
    return Greatest(activity, Coalesce("reopened_at", activity))


def grace_period() -> Rule:
    def cutoff(p: ClosePolicy) -> Value:
        from django.db.models import DateTimeField

        return Value(timezone.now() - timedelta(days=p.grace_days), output_field=DateTimeField())

    return Rule(
        code="grace_period",
        label_zh="宽限期已过",
        label_en="Grace period since last activity or reopen has passed",
        severity=Severity.BLOCKING,
        scope=Scope.DOCUMENT,
        failing=lambda p: Q(GreaterThan(grace_clock(), cutoff(p))),
        measures=lambda p: {"last_activity": grace_clock()},
        threshold=lambda p: f"no activity or reopen for {p.grace_days} days",
        hint_zh="宽限期内（自最近业务或反结案起）不自动结案；期满后自动处理。",
        hint_en="Automatic close waits for the grace days; nothing to do.",
        auto_only=True,
    )


def line_sum(expr: Expression | F) -> Expression:
    """Sum of an expression over the document's lines in close scope, as a Document expression."""
    lines = (
        Line.objects.filter(document_id=OuterRef("pk"), close_state__in=LINE_SCOPE)
        .values("document_id")
        .annotate(total=Sum(num(expr)))
        .values("total")
    )
    return Coalesce(Subquery(lines, output_field=_DEC), dec(0))


def effective_rules(
    rules: tuple[Rule, ...], policy: ClosePolicy, *, for_auto: bool
) -> list[tuple[Rule, Severity]]:
    """The rules a policy switches on, with the severity it gives each."""
    result: list[tuple[Rule, Severity]] = []
    for rule in rules:
        if rule.auto_only and not for_auto:
            continue
        setting = (policy.rule_settings or {}).get(rule.code, {})
        if setting.get("enabled", True) is False:
            continue
        severity = Severity(setting.get("severity", rule.severity))
        result.append((rule, severity))
    return result
