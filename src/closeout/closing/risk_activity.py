"""Risk warnings, families 3 and 4: a close right after a large change of planned quantities,
and a user closing far more than usual (`closeout.closing.risk`)."""

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.closing.risk_base import (
    PLANNED_CHANGE_DAYS,
    PLANNED_CHANGE_PCT,
    RATE_HISTORY_DAYS,
    RATE_MIN_DAYS,
    RATE_MIN_EXCESS,
    RATE_MULTIPLE,
    CloseLine,
    Facts,
    RiskStatus,
    RiskWarning,
    spread_of,
)
from closeout.documents.models import (
    Document,
)

# --- 3. a close right after a large change of planned quantities ---------------------------


def _planned(values: Any) -> Decimal | None:
    if not isinstance(values, dict) or values.get("planned_qty") is None:
        return None
    try:
        return Decimal(str(values["planned_qty"]))
    except InvalidOperation:
        return None


def change_risks(document: Document, lines: list[CloseLine], now: datetime) -> list[RiskWarning]:
    """From the DOCUMENT_UPDATED audit events of the last PLANNED_CHANGE_DAYS (the upsert
    records each changed line's before and after values): per line being closed, the planned
    quantity before the first and after the last change."""
    updates = document_updates([document.pk], now).order_by("seq").values_list("at", "data")
    return change_risks_from(list(updates[:UPDATES_MAX]), lines, now)


# The first DOCUMENT_UPDATED events of a document looked at: a bound on the read.
UPDATES_MAX = 200


def document_updates(document_ids: list[int], now: datetime) -> Any:
    """The DOCUMENT_UPDATED audit events of the documents in the last PLANNED_CHANGE_DAYS."""
    return AuditEvent.objects.filter(
        object_type=AuditObject.DOCUMENT,
        object_id__in=[str(pk) for pk in document_ids],
        action=int(AuditAction.DOCUMENT_UPDATED),
        at__gte=now - timedelta(days=PLANNED_CHANGE_DAYS),
        at__lte=now,
    )


def change_risks_from(
    updates: list[tuple[datetime, Any]], lines: list[CloseLine], now: datetime
) -> list[RiskWarning]:
    """The planned-quantity check given the document's updates (time, data) in order."""
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
            Facts(
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
            Facts(
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


def rate_risk(actor: AbstractBaseUser, now: datetime) -> RiskWarning:
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
        return Facts("actor_close_rate", measured, reference, threshold).warn(
            RiskStatus.THIN_HISTORY,
            f"{who} 近{RATE_HISTORY_DAYS}天只有 {spread.size} 天有结案（少于 {RATE_MIN_DAYS} 天），"
            f"不比较今天的结案数（本次为今天第 {measured_n} 笔）。",
            f"{who} closed on only {spread.size} days in {RATE_HISTORY_DAYS} days (fewer than "
            f"{RATE_MIN_DAYS}): today's count (this is close {measured_n} today) is not compared.",
        )
    flagged = x > RATE_MULTIPLE * spread.median and x - spread.median >= RATE_MIN_EXCESS
    median = f"{spread.median.normalize():f}"
    if not flagged:
        return Facts("actor_close_rate", measured, reference, threshold).warn(
            RiskStatus.NORMAL,
            f"今天第 {measured_n} 笔结案，{who} 平常每天中位数 {median} 笔。",
            f"Close {measured_n} today; {who} usually closes {median} a day (median).",
        )
    return Facts("actor_close_rate", measured, reference, threshold).warn(
        RiskStatus.FLAGGED,
        f"这是 {who} 今天第 {measured_n} 笔结案，远多于平常（{spread.size} 个工作日的中位数 "
        f"{median} 笔/天）。",
        f"This is {who}'s close number {measured_n} today, far above their usual "
        f"{median} a day (median of {spread.size} active days).",
        "确认这些结案都是有意为之（而非误操作或账号被他人使用）；大批结案请用批量结案并经审批。",
        "Make sure these closes are intended (not a slip, nor someone else using the account); "
        "close many documents through a batch with approval.",
    )
