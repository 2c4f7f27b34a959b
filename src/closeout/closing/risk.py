"""Risk warnings before a manual close (风险预警, S24): unusual cases read from the data.

Each warning carries the numbers behind it (the measured value, the reference it is compared
with and the threshold), a message in Chinese and English and what to do next. Warnings are
advisory: they never change a rule's verdict, never block a close, and the automatic sweep
does not compute them.

Four families, each computed with a few bounded, indexed queries:
- the released open value and the short-delivery share of this close against the partner's and
  the items' earlier manual closes (robust z-score from the median and the MAD);
- a close reason that the data contradicts (the table `REASON_CONTRADICTIONS`);
- a close right after a large change of planned quantities by the ERP upsert (audit events);
- a user closing far more today than on their usual days (audit events).
"""

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Max, Q, Sum, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.closing.selectors import open_lines_released
from closeout.documents.models import (
    BusinessEvent,
    CloseKind,
    CloseState,
    Document,
    EventKind,
    EventStatus,
    Line,
)
from closeout.documents.types import spec_for

# --- thresholds ----------------------------------------------------------------------------
# Named here rather than in a table: they are statistical conventions, not business policy,
# and changing them needs no migration. Each says why it has its value.

# Earlier closes looked at: one year covers seasonal patterns without dragging in old habits.
HISTORY_DAYS = 365
# The newest earlier closes kept per partner and per item, so a busy partner stays cheap.
HISTORY_MAX = 500
# A median and a MAD from fewer than 8 values move too much with one close to judge by.
MIN_HISTORY = 8
# Iglewicz and Hoaglin's cut-off for the modified z-score 0.6745·(x − median)/MAD.
ROBUST_Z_LIMIT = Decimal("3.5")
# Below these excesses over the median nothing is worth a warning, however regular the history
# (a history of identical closes has no spread at all): 1,000 in company currency and 10
# percentage points of the planned quantity.
MIN_VALUE_EXCESS = Decimal(1000)
MIN_SHARE_EXCESS = Decimal("0.10")
# Business events this recent contradict a reason saying that no more will come: two weeks is
# longer than a delivery usually takes to be booked.
RECENT_EVENT_DAYS = 14
# "Completed" while more than this share of the planned quantity is still unfulfilled.
COMPLETED_MAX_SHORT_SHARE = Decimal("0.10")
# Planned quantities changed by the ERP this recently, by more than this percentage: a quantity
# lowered to what was delivered makes a short close look complete.
PLANNED_CHANGE_DAYS = 7
PLANNED_CHANGE_PCT = Decimal(20)
# A user's closes today against their active days of the last 90 days (their current habits,
# and a quarter of the rows a year would group for a heavy user): at least 8 such days, and
# today at least 3 times their median day and 5 closes more than it.
RATE_HISTORY_DAYS = 90
RATE_MIN_DAYS = 8
RATE_MULTIPLE = Decimal(3)
RATE_MIN_EXCESS = 5

# The MAD of a normal distribution is 0.6745 of its standard deviation; the mean absolute
# deviation 0.7979 of it (1/1.2533), used when more than half the values equal the median.
_MAD_FACTOR = Decimal("0.6745")
_MEAN_AD_FACTOR = Decimal("1.2533")
_Q = Decimal("0.0001")


class RiskStatus(StrEnum):
    FLAGGED = "flagged"
    NORMAL = "normal"
    THIN_HISTORY = "thin_history"


@dataclass(frozen=True)
class RiskWarning:
    """One risk check of a close: flagged, normal, or not judged for lack of history."""

    code: str
    status: RiskStatus
    measured: dict[str, Any]
    reference: dict[str, Any]
    threshold: str
    message_zh: str
    message_en: str
    action_zh: str = ""
    action_en: str = ""
    lines: list[int] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.status is RiskStatus.FLAGGED

    # `label` and `hint` as on rules, so the pages' filters show either in the page language.
    def label(self, lang: str = "zh") -> str:
        return self.message_en if lang.startswith("en") else self.message_zh

    def hint(self, lang: str = "zh") -> str:
        return self.action_en if lang.startswith("en") else self.action_zh

    def as_dict(self) -> dict[str, Any]:
        from closeout.audit.services import to_json_value

        return {
            "code": self.code,
            "status": str(self.status),
            "measured": to_json_value(self.measured),
            "reference": to_json_value(self.reference),
            "threshold": self.threshold,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "action_zh": self.action_zh,
            "action_en": self.action_en,
            "lines": self.lines,
        }


def _tidy(value: Any) -> Any:
    """Numbers as people read them: 40 rather than 40.0000 (and never 4E+1)."""
    if isinstance(value, Decimal):
        return Decimal(f"{value.normalize():f}")
    return value


@dataclass(frozen=True)
class _Facts:
    """What a check measured and compared, whatever its outcome."""

    code: str
    measured: dict[str, Any]
    reference: dict[str, Any]
    threshold: str

    def warn(
        self,
        status: RiskStatus,
        message_zh: str,
        message_en: str,
        action_zh: str = "",
        action_en: str = "",
        lines: list[int] | None = None,
    ) -> RiskWarning:
        return RiskWarning(
            self.code,
            status,
            {k: _tidy(v) for k, v in self.measured.items()},
            {k: _tidy(v) for k, v in self.reference.items()},
            self.threshold,
            message_zh,
            message_en,
            action_zh,
            action_en,
            lines or [],
        )


# --- robust statistics ---------------------------------------------------------------------


def _d(value: Any) -> Decimal:
    """A database number as a Decimal (SQLite computes expressions in binary floating point)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        value = str(value)
    return Decimal(value).quantize(_Q)


@dataclass(frozen=True)
class Spread:
    """Median, MAD and the scale that turns a distance from the median into a robust z."""

    size: int
    median: Decimal
    mad: Decimal
    scale: Decimal
    values: tuple[Decimal, ...]

    def z(self, x: Decimal) -> Decimal | None:
        if self.scale == 0:
            return None
        return ((x - self.median) / self.scale).quantize(Decimal("0.01"))

    def percentile(self, x: Decimal) -> Decimal:
        """The share of earlier values at or below x, in percent."""
        if not self.values:
            return Decimal(0)
        below = sum(1 for v in self.values if v <= x)
        return (Decimal(100) * below / len(self.values)).quantize(Decimal("0.1"))

    def reference(self) -> dict[str, Any]:
        return {"history": self.size, "median": self.median, "mad": self.mad}


def spread_of(values: Iterable[Decimal]) -> Spread:
    data = tuple(values)
    if not data:
        return Spread(0, Decimal(0), Decimal(0), Decimal(0), data)
    median = Decimal(statistics.median(data)).quantize(_Q)
    mad = Decimal(statistics.median(abs(v - median) for v in data)).quantize(_Q)
    if mad > 0:
        scale = mad / _MAD_FACTOR
    else:
        mean_ad = sum((abs(v - median) for v in data), Decimal(0)) / len(data)
        scale = mean_ad * _MEAN_AD_FACTOR
    return Spread(len(data), median, mad, scale, data)


def _outlier(spread: Spread, x: Decimal, min_excess: Decimal) -> tuple[bool, Decimal | None]:
    """Far above the history: enough history, a material excess, and a robust z over the
    limit (or no spread at all in the history)."""
    z = spread.z(x)
    if spread.size < MIN_HISTORY or x - spread.median < min_excess:
        return False, z
    return (z is None or z > ROBUST_Z_LIMIT), z


# --- the close being considered ------------------------------------------------------------


@dataclass(frozen=True)
class _CloseLine:
    line_no: int
    item_id: int | None
    planned_qty: Decimal
    released_qty: Decimal
    released_value_company: Decimal


def _close_lines(document: Document, line_nos: list[int] | None) -> list[_CloseLine]:
    rows = open_lines_released(document, line_nos).values_list(
        "line_no", "item_id", "planned_qty", "rq", "rv"
    )
    rate = document.exchange_rate
    return [
        _CloseLine(no, item, _d(planned), _d(rq), (_d(rv) * rate).quantize(_Q))
        for no, item, planned, rq, rv in rows
    ]


def _share(released: Decimal, planned: Decimal) -> Decimal | None:
    return (released / planned).quantize(_Q) if planned > 0 else None


def _has_quantities(doc_type: str) -> bool:
    """Types whose close releases a quantity still to deliver (orders), where a short-delivery
    share means something."""
    return spec_for(doc_type).commitment is not None


# --- 1. released value and short share against partner and item history --------------------


def _manual_history(now: datetime, doc_type: str) -> Any:
    return Line.objects.filter(
        document__doc_type=doc_type,
        close_kind=CloseKind.MANUAL,
        close_state__in=(CloseState.CLOSED, CloseState.ARCHIVED),
        closed_at__gte=now - timedelta(days=HISTORY_DAYS),
        closed_at__lt=now,
    )


def _partner_history(document: Document, now: datetime) -> list[tuple[Decimal, Decimal | None]]:
    """(released value in company currency, short share) of each earlier manual close of the
    partner's documents of this type: one GROUP BY over (document, close sequence)."""
    rows = (
        _manual_history(now, document.doc_type)
        .filter(document__partner_id=document.partner_id)
        .values("document_id", "closed_in")
        .annotate(
            value=Sum("released_value_company"),
            rq=Sum("released_qty"),
            pq=Sum("planned_qty"),
            last=Max("closed_at"),
        )
        .order_by("-last")
        .values_list("value", "rq", "pq")[:HISTORY_MAX]
    )
    return [(_d(v), _share(_d(rq), _d(pq))) for v, rq, pq in rows]


def _item_history(
    doc_type: str, item_ids: list[int], now: datetime
) -> dict[int, list[tuple[Decimal, Decimal | None]]]:
    """Per item, (released value, short share) of its earlier manually closed lines, the newest
    HISTORY_MAX per item (one query, a window function numbering each item's lines)."""
    rows = (
        _manual_history(now, doc_type)
        .filter(item_id__in=item_ids)
        .annotate(
            rn=Window(RowNumber(), partition_by=[F("item_id")], order_by=F("closed_at").desc())
        )
        .filter(rn__lte=HISTORY_MAX)
        .values_list("item_id", "released_value_company", "released_qty", "planned_qty")
    )
    result: dict[int, list[tuple[Decimal, Decimal | None]]] = defaultdict(list)
    for item_id, value, rq, pq in rows:
        result[item_id].append((_d(value), _share(_d(rq), _d(pq))))
    return result


@dataclass(frozen=True)
class _Measure:
    """What is compared: `value` (company currency) or `share` (of the planned quantity)."""

    name: str
    zh: str
    en: str
    min_excess: Decimal


_VALUE = _Measure("released_value", "释放未结金额", "released open value", MIN_VALUE_EXCESS)
_SHARE = _Measure("short_share", "短交比例", "short-delivery share", MIN_SHARE_EXCESS)


def _fmt(value: Decimal | None, measure: _Measure) -> str:
    if value is None:
        return "—"
    if measure is _SHARE:
        return f"{(value * 100).quantize(Decimal('0.1'))}%"
    return f"{value.quantize(Decimal('0.01')):,}"


def _history_check(
    *,
    code: str,
    whose_zh: str,
    whose_en: str,
    measure: _Measure,
    x: Decimal,
    history: list[Decimal],
    lines: list[int],
) -> RiskWarning:
    spread = spread_of(history)
    flagged, z = _outlier(spread, x, measure.min_excess)
    threshold = (
        f"z > {ROBUST_Z_LIMIT}, excess ≥ {_fmt(measure.min_excess, measure)}, "
        f"history ≥ {MIN_HISTORY}"
    )
    measured = {measure.name: x}
    reference = {
        **spread.reference(),
        "robust_z": z if z is not None else "∞" if x > spread.median else 0,
        "percentile": spread.percentile(x),
        "days": HISTORY_DAYS,
    }
    shown, median = _fmt(x, measure), _fmt(spread.median, measure)
    if spread.size < MIN_HISTORY:
        return _Facts(code, measured, reference, threshold).warn(
            RiskStatus.THIN_HISTORY,
            f"{whose_zh}近{HISTORY_DAYS}天只有 {spread.size} 次手工结案（少于 {MIN_HISTORY} 次），"
            f"不比较{measure.zh}（本次 {shown}）。",
            f"{whose_en} has only {spread.size} manual closes in {HISTORY_DAYS} days "
            f"(fewer than {MIN_HISTORY}): its {measure.en} (this close {shown}) is not compared.",
            lines=lines,
        )
    z_text = "∞" if z is None else str(z)
    if not flagged:
        return _Facts(code, measured, reference, threshold).warn(
            RiskStatus.NORMAL,
            f"{measure.zh} {shown} 在{whose_zh}的常见范围内（中位数 {median}，z = {z_text}）。",
            f"The {measure.en} {shown} is within the usual range of {whose_en} "
            f"(median {median}, z = {z_text}).",
            lines=lines,
        )
    return _Facts(code, measured, reference, threshold).warn(
        RiskStatus.FLAGGED,
        f"本次{measure.zh} {shown} 远高于{whose_zh}以往 {spread.size} 次手工结案"
        f"（中位数 {median}，MAD {_fmt(spread.mad, measure)}，稳健 z = {z_text}，"
        f"高于 {reference['percentile']}% 的历史结案）。",
        f"This close's {measure.en} {shown} is far above {whose_en}'s "
        f"{spread.size} earlier manual closes (median {median}, MAD "
        f"{_fmt(spread.mad, measure)}, robust z = {z_text}, at or above "
        f"{reference['percentile']}% of them).",
        "核对是否选错了单据或行、数量是否录错；确认无误后在备注中说明原因。",
        "Check that the right document and lines are chosen and the quantities are right; "
        "if so, explain the reason in the remark.",
        lines,
    )


def _subject_risks(
    subject: str,
    whose_zh: str,
    whose_en: str,
    lines: list[_CloseLine],
    history: list[tuple[Decimal, Decimal | None]],
    quantities: bool,
) -> list[RiskWarning]:
    """The released value and, for orders, the short share of `lines` against the `history`
    of one partner or item."""
    nos = [line.line_no for line in lines]
    value = sum((line.released_value_company for line in lines), Decimal(0))
    share = _share(
        sum((line.released_qty for line in lines), Decimal(0)),
        sum((line.planned_qty for line in lines), Decimal(0)),
    )
    measures: list[tuple[_Measure, Decimal | None, list[Decimal]]] = [
        (_VALUE, value, [v for v, _s in history])
    ]
    if quantities:
        measures.append((_SHARE, share, [s for _v, s in history if s is not None]))
    return [
        _history_check(
            code=f"{subject}_{measure.name}",
            whose_zh=whose_zh,
            whose_en=whose_en,
            measure=measure,
            x=x,
            history=values,
            lines=nos,
        )
        for measure, x, values in measures
        if x is not None
    ]


def _history_risks(document: Document, lines: list[_CloseLine], now: datetime) -> list[RiskWarning]:
    risks: list[RiskWarning] = []
    quantities = _has_quantities(document.doc_type)
    if document.partner_id is not None:
        partner = document.partner.code if document.partner else str(document.partner_id)
        risks += _subject_risks(
            "partner",
            f"往来单位 {partner} ",
            f"partner {partner}",
            lines,
            _partner_history(document, now),
            quantities,
        )
    by_item: dict[int, list[_CloseLine]] = defaultdict(list)
    for line in lines:
        if line.item_id is not None:
            by_item[line.item_id].append(line)
    if not by_item:
        return risks
    item_history = _item_history(document.doc_type, list(by_item), now)
    from closeout.core.models import Item

    codes = dict(Item.objects.filter(pk__in=list(by_item)).values_list("pk", "code"))
    for item_id, item_lines in by_item.items():
        code = codes.get(item_id, str(item_id))
        risks += _subject_risks(
            "item",
            f"物料 {code} ",
            f"item {code}",
            item_lines,
            item_history.get(item_id, []),
            quantities,
        )
    return risks


# --- 2. a reason the data contradicts ------------------------------------------------------


class Contradiction(StrEnum):
    RECENT_EVENTS = "recent_events"  # events of these kinds in the last RECENT_EVENT_DAYS
    NO_EVENTS = "no_events"  # not one event of these kinds on the lines
    OPEN_REMAINDER = "open_remainder"  # more than COMPLETED_MAX_SHORT_SHARE left unfulfilled
    NOTHING_SHORT = "nothing_short"  # nothing left unfulfilled at all


@dataclass(frozen=True)
class ReasonContradiction:
    kind: Contradiction
    events: tuple[EventKind, ...] = ()
    claim_zh: str = ""
    claim_en: str = ""


# Close reason code → what in the data would contradict it. The one place this mapping lives;
# a reason without an entry is never flagged.
REASON_CONTRADICTIONS: dict[str, tuple[ReasonContradiction, ...]] = {
    "supplier_cannot_deliver": (
        ReasonContradiction(
            Contradiction.RECENT_EVENTS,
            (EventKind.RECEIPT,),
            "供应商无法交货",
            "the supplier cannot deliver",
        ),
    ),
    "customer_change": (
        ReasonContradiction(
            Contradiction.RECENT_EVENTS,
            (EventKind.SHIPMENT,),
            "客户变更（取消）",
            "the customer changed (cancelled) the order",
        ),
    ),
    "contract_terminated": (
        ReasonContradiction(
            Contradiction.RECENT_EVENTS,
            (EventKind.RECEIPT, EventKind.SHIPMENT, EventKind.INVOICE),
            "合同已终止",
            "the contract is terminated",
        ),
    ),
    "task_cancelled": (
        ReasonContradiction(
            Contradiction.RECENT_EVENTS,
            (EventKind.TASK_COMPLETION, EventKind.COST_POSTING),
            "任务已取消",
            "the tasks are cancelled",
        ),
    ),
    "goods_returned": (
        ReasonContradiction(
            Contradiction.NO_EVENTS, (EventKind.RETURN,), "货物已退回", "the goods were returned"
        ),
    ),
    "completed": (
        ReasonContradiction(
            Contradiction.OPEN_REMAINDER, (), "业务已正常完成", "the business is completed"
        ),
    ),
    "short_delivery_accepted": (
        ReasonContradiction(
            Contradiction.NOTHING_SHORT, (), "接受短交", "a short delivery is accepted"
        ),
    ),
}


def _event_counts(
    document: Document, line_nos: list[int] | None, kinds: set[str], since: datetime, now: datetime
) -> dict[str, dict[str, Any]]:
    """Per event kind on the lines being closed (and header events): all, recent, the recent
    quantity and the latest time; one grouped query."""
    events = BusinessEvent.objects.filter(
        document_id=document.pk,
        kind__in=sorted(kinds),
        status__in=(EventStatus.APPLIED, EventStatus.PENDING),
        occurred_at__lte=now,
    )
    if line_nos is not None:
        events = events.filter(Q(line__line_no__in=line_nos) | Q(line__isnull=True))
    recent = Q(occurred_at__gte=since)
    rows = events.values("kind").annotate(
        total=Count("id"),
        recent=Count("id", filter=recent),
        recent_qty=Sum("quantity", filter=recent),
        last=Max("occurred_at"),
    )
    return {row["kind"]: dict(row) for row in rows}


def _reason_risks(
    document: Document,
    reason_code: str,
    lines: list[_CloseLine],
    line_nos: list[int] | None,
    now: datetime,
) -> list[RiskWarning]:
    spec = spec_for(document.doc_type)
    taken = set(spec.effects) | set(spec.header_events)
    # Only what this type's events can show: a purchase order has no shipments to contradict
    # "customer change".
    checks = [
        c
        for c in REASON_CONTRADICTIONS.get(reason_code, ())
        if not c.events or taken.intersection(c.events)
    ]
    if not checks:
        return []
    since = now - timedelta(days=RECENT_EVENT_DAYS)
    kinds = {str(k) for c in checks for k in c.events if k in taken}
    counts = _event_counts(document, line_nos, kinds, since, now) if kinds else {}
    nos = [line.line_no for line in lines]
    planned = sum((line.planned_qty for line in lines), Decimal(0))
    released = sum((line.released_qty for line in lines), Decimal(0))
    share = _share(released, planned)
    quantities = _has_quantities(document.doc_type)
    risks: list[RiskWarning] = []
    for check in checks:
        risk = _contradiction(check, reason_code, counts, share, quantities, nos, now)
        if risk is not None:
            risks.append(risk)
    return risks


def _contradiction(
    check: ReasonContradiction,
    reason_code: str,
    counts: dict[str, dict[str, Any]],
    share: Decimal | None,
    quantities: bool,
    nos: list[int],
    now: datetime,
) -> RiskWarning | None:
    code = f"reason_{check.kind}"
    action_zh = "核对结案原因是否选对；若原因属实，在备注中说明与业务数据不符的原因。"
    action_en = (
        "Check that the close reason is the right one; if it is, explain in the remark why "
        "the business data says otherwise."
    )
    claim = f"{reason_code}: {check.claim_en}"
    if check.kind is Contradiction.RECENT_EVENTS:
        rows = [counts[str(k)] for k in check.events if str(k) in counts]
        recent = sum(int(r["recent"]) for r in rows)
        qty = sum((_d(r["recent_qty"]) for r in rows if r["recent"]), Decimal(0))
        last = max((r["last"] for r in rows if r["recent"]), default=None)
        kinds = ", ".join(str(k) for k in check.events)
        measured: dict[str, Any] = {"events": recent, "quantity": qty}
        reference: dict[str, Any] = {"kinds": kinds, "days": RECENT_EVENT_DAYS, "reason": claim}
        threshold = f"events in the last {RECENT_EVENT_DAYS} days = 0"
        if not recent:
            return _Facts(code, measured, reference, threshold).warn(
                RiskStatus.NORMAL,
                f"原因“{check.claim_zh}”：近 {RECENT_EVENT_DAYS} 天无相关业务（{kinds}）。",
                f"Reason '{check.claim_en}': no {kinds} in the last {RECENT_EVENT_DAYS} days.",
                lines=nos,
            )
        days = (now - last).days if last else 0
        reference["last_days_ago"] = days
        return _Facts(code, measured, reference, threshold).warn(
            RiskStatus.FLAGGED,
            f"结案原因为“{check.claim_zh}”，但近 {RECENT_EVENT_DAYS} 天仍有 {recent} 笔业务"
            f"（{kinds}，数量 {qty.normalize():f}，最近一笔在 {days} 天前）。",
            f"The reason says {check.claim_en}, but {recent} {kinds} event(s) happened in the "
            f"last {RECENT_EVENT_DAYS} days (quantity {qty.normalize():f}, the latest "
            f"{days} day(s) ago).",
            action_zh,
            action_en,
            nos,
        )
    if check.kind is Contradiction.NO_EVENTS:
        total = sum(int(counts[str(k)]["total"]) for k in check.events if str(k) in counts)
        kinds = ", ".join(str(k) for k in check.events)
        measured = {"events": total}
        reference = {"kinds": kinds, "reason": claim}
        if total:
            return None
        return _Facts(code, measured, reference, "events > 0").warn(
            RiskStatus.FLAGGED,
            f"结案原因为“{check.claim_zh}”，但所结行没有任何退货记录（{kinds}）。",
            f"The reason says {check.claim_en}, but the lines being closed have no {kinds} "
            "recorded.",
            action_zh,
            action_en,
            nos,
        )
    if not quantities or share is None:
        return None
    measured = {"short_share": share}
    reference = {"reason": claim}
    if check.kind is Contradiction.OPEN_REMAINDER:
        if share <= COMPLETED_MAX_SHORT_SHARE:
            return None
        return _Facts(
            code, measured, reference, f"short share ≤ {_fmt(COMPLETED_MAX_SHORT_SHARE, _SHARE)}"
        ).warn(
            RiskStatus.FLAGGED,
            f"结案原因为“{check.claim_zh}”，但仍有 {_fmt(share, _SHARE)} 的计划数量未完成"
            f"（上限 {_fmt(COMPLETED_MAX_SHORT_SHARE, _SHARE)}）。",
            f"The reason says {check.claim_en}, but {_fmt(share, _SHARE)} of the planned "
            f"quantity is unfulfilled (limit {_fmt(COMPLETED_MAX_SHORT_SHARE, _SHARE)}).",
            "若是短交，请改选“接受短交”等原因并说明。",
            "If this is a short delivery, choose a reason such as short_delivery_accepted and "
            "explain it.",
            nos,
        )
    if share > 0:
        return None
    return _Facts(code, measured, reference, "short share > 0").warn(
        RiskStatus.FLAGGED,
        f"结案原因为“{check.claim_zh}”，但所结行已全部完成，没有短交数量。",
        f"The reason says {check.claim_en}, but the lines being closed are fully delivered: "
        "nothing is short.",
        "请改选“正常完成”。",
        "Choose the reason 'completed' instead.",
        nos,
    )


# --- 3. a close right after a large change of planned quantities ---------------------------


def _planned(values: Any) -> Decimal | None:
    if not isinstance(values, dict) or values.get("planned_qty") is None:
        return None
    try:
        return Decimal(str(values["planned_qty"]))
    except InvalidOperation:
        return None


def _change_risks(document: Document, lines: list[_CloseLine], now: datetime) -> list[RiskWarning]:
    """From the DOCUMENT_UPDATED audit events of the last PLANNED_CHANGE_DAYS (the upsert
    records each changed line's before and after values): per line being closed, the planned
    quantity before the first and after the last change."""
    since = now - timedelta(days=PLANNED_CHANGE_DAYS)
    updates = (
        AuditEvent.objects.filter(
            object_type=AuditObject.DOCUMENT,
            object_id=str(document.pk),
            action=int(AuditAction.DOCUMENT_UPDATED),
            at__gte=since,
            at__lte=now,
        )
        .order_by("seq")
        .values_list("at", "data")[:200]
    )
    scope = {line.line_no for line in lines}
    first: dict[int, tuple[Decimal, datetime]] = {}
    last: dict[int, Decimal] = {}
    for at, data in updates:
        for key, change in (data or {}).items():
            if not key.startswith("line ") or not isinstance(change, dict):
                continue
            try:
                no = int(key.removeprefix("line "))
            except ValueError:
                continue
            before, after = _planned(change.get("before")), _planned(change.get("after"))
            if no not in scope or after is None or before is None:
                continue
            first.setdefault(no, (before, at))
            last[no] = after
    threshold = f"change > {PLANNED_CHANGE_PCT}% in {PLANNED_CHANGE_DAYS} days"
    risks: list[RiskWarning] = []
    for no in sorted(first):
        before, at = first[no]
        after = last[no]
        if before == after:
            continue
        pct = (
            (abs(after - before) / before * 100).quantize(Decimal("0.1"))
            if before > 0
            else Decimal(100)
        )
        if pct <= PLANNED_CHANGE_PCT:
            continue
        days = (now - at).days
        b, a = f"{before.normalize():f}", f"{after.normalize():f}"
        risks.append(
            _Facts(
                "planned_qty_changed",
                {"before": before, "after": after, "change_pct": pct},
                {"days_ago": days, "window_days": PLANNED_CHANGE_DAYS},
                threshold,
            ).warn(
                RiskStatus.FLAGGED,
                f"第 {no} 行的计划数量在 {days} 天前由 ERP 从 {b} 改为 {a}（变动 {pct}%），"
                "随即结案。",
                f"Line {no}'s planned quantity was changed by the ERP {days} day(s) ago from "
                f"{b} to {a} ({pct}%), just before this close.",
                "核对数量变更是否经过批准、是否为凑足完成数量而改；必要时先在 ERP 中更正。",
                "Check that the change was approved and not made to make the close look "
                "complete; correct it in the ERP first if needed.",
                [no],
            )
        )
    if not risks:
        risks.append(
            _Facts(
                "planned_qty_changed",
                {"changed_lines": len(first)},
                {"window_days": PLANNED_CHANGE_DAYS},
                threshold,
            ).warn(
                RiskStatus.NORMAL,
                f"近 {PLANNED_CHANGE_DAYS} 天计划数量没有大幅变动。",
                f"No large planned-quantity change in the last {PLANNED_CHANGE_DAYS} days.",
                lines=sorted(scope),
            )
        )
    return risks


# --- 4. a user closing far more than usual -------------------------------------------------


def _rate_risk(actor: AbstractBaseUser, now: datetime) -> RiskWarning:
    """Closes by the actor today (this one included) against their days with closes in the
    last RATE_HISTORY_DAYS: one GROUP BY over the actor's close audit events (indexed by actor)."""
    today = timezone.localdate(now)
    start = timezone.make_aware(
        datetime.combine(today - timedelta(days=RATE_HISTORY_DAYS), datetime.min.time())
    )
    rows = (
        AuditEvent.objects.filter(
            actor_id=actor.pk,
            action__in=(int(AuditAction.DOCUMENT_CLOSED), int(AuditAction.LINES_CLOSED)),
            at__gte=start,
            at__lte=now,
        )
        .annotate(day=TruncDate("at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    by_day = dict(rows)
    measured_n = int(by_day.pop(today, 0)) + 1
    spread = spread_of(Decimal(n) for n in by_day.values())
    x = Decimal(measured_n)
    z = spread.z(x)
    who = actor.get_username()
    measured = {"closes_today": measured_n}
    reference = {
        "active_days": spread.size,
        "median_per_day": spread.median,
        "mad": spread.mad,
        "robust_z": z if z is not None else "∞" if x > spread.median else 0,
        "days": RATE_HISTORY_DAYS,
    }
    threshold = (
        f"> {RATE_MULTIPLE}× median and ≥ median + {RATE_MIN_EXCESS}, active days ≥ {RATE_MIN_DAYS}"
    )
    if spread.size < RATE_MIN_DAYS:
        return _Facts("actor_close_rate", measured, reference, threshold).warn(
            RiskStatus.THIN_HISTORY,
            f"{who} 近{RATE_HISTORY_DAYS}天只有 {spread.size} 天有结案（少于 {RATE_MIN_DAYS} 天），"
            f"不比较今天的结案数（本次为今天第 {measured_n} 笔）。",
            f"{who} closed on only {spread.size} days in {RATE_HISTORY_DAYS} days (fewer than "
            f"{RATE_MIN_DAYS}): today's count (this is close {measured_n} today) is not compared.",
        )
    flagged = x > RATE_MULTIPLE * spread.median and x - spread.median >= RATE_MIN_EXCESS
    median = f"{spread.median.normalize():f}"
    if not flagged:
        return _Facts("actor_close_rate", measured, reference, threshold).warn(
            RiskStatus.NORMAL,
            f"今天第 {measured_n} 笔结案，{who} 平常每天中位数 {median} 笔。",
            f"Close {measured_n} today; {who} usually closes {median} a day (median).",
        )
    return _Facts("actor_close_rate", measured, reference, threshold).warn(
        RiskStatus.FLAGGED,
        f"这是 {who} 今天第 {measured_n} 笔结案，远多于平常（{spread.size} 个工作日的中位数 "
        f"{median} 笔/天）。",
        f"This is {who}'s close number {measured_n} today, far above their usual "
        f"{median} a day (median of {spread.size} active days).",
        "确认这些结案都是有意为之（而非误操作或账号被他人使用）；大批结案请用批量结案并经审批。",
        "Make sure these closes are intended (not a slip, nor someone else using the account); "
        "close many documents through a batch with approval.",
    )


# --- the selector --------------------------------------------------------------------------


def close_risks_for(
    document: Document,
    *,
    actor: AbstractBaseUser | None,
    reason_code: str = "",
    line_nos: list[int] | None = None,
    now: datetime | None = None,
) -> list[RiskWarning]:
    """Every risk check of a manual close of `document` (or of its lines `line_nos`) by
    `actor` with `reason_code` (when known), flagged ones first."""
    if document.close_state != CloseState.OPEN:
        return []
    moment = now or timezone.now()
    lines = _close_lines(document, line_nos)
    if not lines:
        return []
    risks = _history_risks(document, lines, moment)
    if reason_code:
        risks += _reason_risks(document, reason_code, lines, line_nos, moment)
    risks += _change_risks(document, lines, moment)
    if actor is not None and actor.pk is not None:
        risks.append(_rate_risk(actor, moment))
    order = {RiskStatus.FLAGGED: 0, RiskStatus.THIN_HISTORY: 1, RiskStatus.NORMAL: 2}
    return sorted(risks, key=lambda r: order[r.status])


__all__ = [
    "REASON_CONTRADICTIONS",
    "Contradiction",
    "RiskStatus",
    "RiskWarning",
    "Spread",
    "close_risks_for",
    "spread_of",
]
