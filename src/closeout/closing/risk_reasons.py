"""Risk warnings, family 2: a close reason the data contradicts (`closeout.closing.risk`)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db.models import Count, Max, Q, Sum

from closeout.closing.risk_base import (
    COMPLETED_MAX_SHORT_SHARE,
    RECENT_EVENT_DAYS,
    CloseLine,
    Facts,
    RiskStatus,
    RiskWarning,
    as_decimal,
    has_quantities,
    short_share,
)
from closeout.closing.risk_history import (
    SHARE,
    fmt,
)
from closeout.documents.models import (
    BusinessEvent,
    Document,
    EventKind,
    EventStatus,
)
from closeout.documents.types import spec_for

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


def event_counts(
    document: Document, line_nos: list[int] | None, kinds: set[str], since: datetime, now: datetime
) -> dict[str, dict[str, Any]]:
    """Per event kind on the lines being closed (and header events): all, recent, the recent
    quantity and the latest time; one grouped query."""
    events = _events(kinds, now).filter(document_id=document.pk)
    if line_nos is not None:
        events = events.filter(Q(line__line_no__in=line_nos) | Q(line__isnull=True))
    return {row["kind"]: dict(row) for row in _counted(events.values("kind"), since)}


def event_counts_of_documents(
    document_ids: list[int], kinds: set[str], since: datetime, now: datetime
) -> dict[int, dict[str, dict[str, Any]]]:
    """`event_counts` of the whole of many documents, in one grouped query."""
    events = _events(kinds, now).filter(document_id__in=document_ids)
    result: dict[int, dict[str, dict[str, Any]]] = {pk: {} for pk in document_ids}
    for row in _counted(events.values("document_id", "kind"), since):
        result[row.pop("document_id")][row["kind"]] = row
    return result


def _events(kinds: set[str], now: datetime) -> Any:
    return BusinessEvent.objects.filter(
        kind__in=sorted(kinds),
        status__in=(EventStatus.APPLIED, EventStatus.PENDING),
        occurred_at__lte=now,
    )


def _counted(grouped: Any, since: datetime) -> Any:
    recent = Q(occurred_at__gte=since)
    return grouped.annotate(
        total=Count("id"),
        recent=Count("id", filter=recent),
        recent_qty=Sum("quantity", filter=recent),
        last=Max("occurred_at"),
    )


def reason_checks(doc_type: str, reason_code: str) -> tuple[list[ReasonContradiction], set[str]]:
    """What could contradict the reason on a document of the type, and the event kinds that
    tells from."""
    spec = spec_for(doc_type)
    taken = set(spec.effects) | set(spec.header_events)
    # Only what this type's events can show: a purchase order has no shipments to contradict
    # "customer change".
    checks = [
        c
        for c in REASON_CONTRADICTIONS.get(reason_code, ())
        if not c.events or taken.intersection(c.events)
    ]
    return checks, {str(k) for c in checks for k in c.events if k in taken}


def reason_risks(
    document: Document,
    reason_code: str,
    lines: list[CloseLine],
    line_nos: list[int] | None,
    now: datetime,
) -> list[RiskWarning]:
    checks, kinds = reason_checks(document.doc_type, reason_code)
    if not checks:
        return []
    since = now - timedelta(days=RECENT_EVENT_DAYS)
    counts = event_counts(document, line_nos, kinds, since, now) if kinds else {}
    return reason_risks_from(document, reason_code, checks, counts, lines, now)


def reason_risks_from(
    document: Document,
    reason_code: str,
    checks: list[ReasonContradiction],
    counts: dict[str, dict[str, Any]],
    lines: list[CloseLine],
    now: datetime,
) -> list[RiskWarning]:
    """The reason checks given the event counts per kind (`event_counts`)."""
    nos = [line.line_no for line in lines]
    planned = sum((line.planned_qty for line in lines), Decimal(0))
    released = sum((line.released_qty for line in lines), Decimal(0))
    share = short_share(released, planned)
    quantities = has_quantities(document.doc_type)
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
    """Whether a reason contradicts the document's facts, for each kind of contradiction (recent
    events, no events at all, an open remainder under a "completed" reason, nothing short under
    a shortfall reason): the warning with its measured and reference values, or None. Long
    because each kind is its own short case, kept together so the four read side by side."""
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
        qty = sum((as_decimal(r["recent_qty"]) for r in rows if r["recent"]), Decimal(0))
        last = max((r["last"] for r in rows if r["recent"]), default=None)
        kinds = ", ".join(str(k) for k in check.events)
        measured: dict[str, Any] = {"events": recent, "quantity": qty}
        reference: dict[str, Any] = {"kinds": kinds, "days": RECENT_EVENT_DAYS, "reason": claim}
        threshold = f"events in the last {RECENT_EVENT_DAYS} days = 0"
        if not recent:
            return Facts(code, measured, reference, threshold).warn(
                RiskStatus.NORMAL,
                f"原因“{check.claim_zh}”：近 {RECENT_EVENT_DAYS} 天无相关业务（{kinds}）。",
                f"Reason '{check.claim_en}': no {kinds} in the last {RECENT_EVENT_DAYS} days.",
                lines=nos,
            )
        days = (now - last).days if last else 0
        reference["last_days_ago"] = days
        return Facts(code, measured, reference, threshold).warn(
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
        return Facts(code, measured, reference, "events > 0").warn(
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
        return Facts(
            code,
            measured,
            reference,
            f"short share ≤ {fmt(COMPLETED_MAX_SHORT_SHARE, SHARE)}",
        ).warn(
            RiskStatus.FLAGGED,
            f"结案原因为“{check.claim_zh}”，但仍有 {fmt(share, SHARE)} 的计划数量未完成"
            f"（上限 {fmt(COMPLETED_MAX_SHORT_SHARE, SHARE)}）。",
            f"The reason says {check.claim_en}, but {fmt(share, SHARE)} of the planned "
            f"quantity is unfulfilled (limit {fmt(COMPLETED_MAX_SHORT_SHARE, SHARE)}).",
            "若是短交，请改选“接受短交”等原因并说明。",
            "If this is a short delivery, choose a reason such as short_delivery_accepted and "
            "explain it.",
            nos,
        )
    if share > 0:
        return None
    return Facts(code, measured, reference, "short share > 0").warn(
        RiskStatus.FLAGGED,
        f"结案原因为“{check.claim_zh}”，但所结行已全部完成，没有短交数量。",
        f"The reason says {check.claim_en}, but the lines being closed are fully delivered: "
        "nothing is short.",
        "请改选“正常完成”。",
        "Choose the reason 'completed' instead.",
        nos,
    )
