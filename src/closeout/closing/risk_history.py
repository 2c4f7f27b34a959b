"""Risk warnings, family 1: the released open value and the short-delivery share of a close
against the partner's and the items' earlier manual closes (`closeout.closing.risk`)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F, Max, Sum, Window
from django.db.models.functions import RowNumber

from closeout.closing.risk_base import (
    HISTORY_DAYS,
    HISTORY_MAX,
    MIN_HISTORY,
    MIN_SHARE_EXCESS,
    MIN_VALUE_EXCESS,
    ROBUST_Z_LIMIT,
    CloseLine,
    Facts,
    RiskStatus,
    RiskWarning,
    _outlier,
    as_decimal,
    has_quantities,
    short_share,
    spread_of,
)
from closeout.documents.models import (
    CloseKind,
    CloseState,
    Document,
    Line,
)

# --- 1. released value and short share against partner and item history --------------------


def manual_history(now: datetime, doc_type: str) -> Any:
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
        manual_history(now, document.doc_type)
        .filter(document__partner_id=document.partner_id)
        .values("document_id", "closed_in")
        .annotate(**_CLOSE_SUMS, last=Max("closed_at"))
        .order_by("-last")
        .values_list("value", "rq", "pq")[:HISTORY_MAX]
    )
    return [(as_decimal(v), short_share(as_decimal(rq), as_decimal(pq))) for v, rq, pq in rows]


_CLOSE_SUMS = {
    "value": Sum("released_value_company"),
    "rq": Sum("released_qty"),
    "pq": Sum("planned_qty"),
}


def partner_histories(
    doc_type: str, partner_ids: list[int], now: datetime
) -> dict[int, list[tuple[Decimal, Decimal | None]]]:
    """`_partner_history` of many partners in one query: the closes grouped as there, and of
    each partner the newest HISTORY_MAX, numbered by a window function over the groups (in SQL
    of its own: Django puts no window over an aggregate)."""
    grouped = (
        manual_history(now, doc_type)
        .filter(document__partner_id__in=partner_ids)
        .annotate(pid=F("document__partner_id"))
        .values("pid", "document_id", "closed_in")
        .annotate(**_CLOSE_SUMS, last=Max("closed_at"))
        .order_by()
    )
    sql, params = grouped.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "pid", "value", "rq", "pq" FROM (SELECT "pid", "value", "rq", "pq", '  # noqa: S608 (the ORM's SQL)
            'ROW_NUMBER() OVER (PARTITION BY "pid" ORDER BY "last" DESC) AS "rn" '
            f'FROM ({sql}) "grouped") "numbered" WHERE "rn" <= %s',
            [*params, HISTORY_MAX],
        )
        rows = cursor.fetchall()
    result: dict[int, list[tuple[Decimal, Decimal | None]]] = defaultdict(list)
    for partner_id, v, rq, pq in rows:
        result[partner_id].append((as_decimal(v), short_share(as_decimal(rq), as_decimal(pq))))
    return result


def item_histories(
    doc_type: str, item_ids: list[int], now: datetime
) -> dict[int, list[tuple[Decimal, Decimal | None]]]:
    """Per item, (released value, short share) of its earlier manually closed lines, the newest
    HISTORY_MAX per item (one query, a window function numbering each item's lines)."""
    rows = (
        manual_history(now, doc_type)
        .filter(item_id__in=item_ids)
        .annotate(
            rn=Window(RowNumber(), partition_by=[F("item_id")], order_by=F("closed_at").desc())
        )
        .filter(rn__lte=HISTORY_MAX)
        .values_list("item_id", "released_value_company", "released_qty", "planned_qty")
    )
    result: dict[int, list[tuple[Decimal, Decimal | None]]] = defaultdict(list)
    for item_id, value, rq, pq in rows:
        result[item_id].append((as_decimal(value), short_share(as_decimal(rq), as_decimal(pq))))
    return result


@dataclass(frozen=True)
class _Measure:
    """What is compared: `value` (company currency) or `share` (of the planned quantity)."""

    name: str
    zh: str
    en: str
    min_excess: Decimal


_VALUE = _Measure("released_value", "释放未结金额", "released open value", MIN_VALUE_EXCESS)
SHARE = _Measure("short_share", "短交比例", "short-delivery share", MIN_SHARE_EXCESS)


def fmt(value: Decimal | None, measure: _Measure) -> str:
    if value is None:
        return "—"
    if measure is SHARE:
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
        f"z > {ROBUST_Z_LIMIT}, excess ≥ {fmt(measure.min_excess, measure)}, "
        f"history ≥ {MIN_HISTORY}"
    )
    measured = {measure.name: x}
    reference = {
        **spread.reference(),
        "robust_z": z if z is not None else "∞" if x > spread.median else 0,
        "percentile": spread.percentile(x),
        "days": HISTORY_DAYS,
    }
    shown, median = fmt(x, measure), fmt(spread.median, measure)
    if spread.size < MIN_HISTORY:
        return Facts(code, measured, reference, threshold).warn(
            RiskStatus.THIN_HISTORY,
            f"{whose_zh}近{HISTORY_DAYS}天只有 {spread.size} 次手工结案（少于 {MIN_HISTORY} 次），"
            f"不比较{measure.zh}（本次 {shown}）。",
            f"{whose_en} has only {spread.size} manual closes in {HISTORY_DAYS} days "
            f"(fewer than {MIN_HISTORY}): its {measure.en} (this close {shown}) is not compared.",
            lines=lines,
        )
    z_text = "∞" if z is None else str(z)
    if not flagged:
        return Facts(code, measured, reference, threshold).warn(
            RiskStatus.NORMAL,
            f"{measure.zh} {shown} 在{whose_zh}的常见范围内（中位数 {median}，z = {z_text}）。",
            f"The {measure.en} {shown} is within the usual range of {whose_en} "
            f"(median {median}, z = {z_text}).",
            lines=lines,
        )
    return Facts(code, measured, reference, threshold).warn(
        RiskStatus.FLAGGED,
        f"本次{measure.zh} {shown} 远高于{whose_zh}以往 {spread.size} 次手工结案"
        f"（中位数 {median}，MAD {fmt(spread.mad, measure)}，稳健 z = {z_text}，"
        f"高于 {reference['percentile']}% 的历史结案）。",
        f"This close's {measure.en} {shown} is far above {whose_en}'s "
        f"{spread.size} earlier manual closes (median {median}, MAD "
        f"{fmt(spread.mad, measure)}, robust z = {z_text}, at or above "
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
    lines: list[CloseLine],
    history: list[tuple[Decimal, Decimal | None]],
    quantities: bool,
) -> list[RiskWarning]:
    """The released value and, for orders, the short share of `lines` against the `history`
    of one partner or item."""
    nos = [line.line_no for line in lines]
    value = sum((line.released_value_company for line in lines), Decimal(0))
    share = short_share(
        sum((line.released_qty for line in lines), Decimal(0)),
        sum((line.planned_qty for line in lines), Decimal(0)),
    )
    measures: list[tuple[_Measure, Decimal | None, list[Decimal]]] = [
        (_VALUE, value, [v for v, _s in history])
    ]
    if quantities:
        measures.append((SHARE, share, [s for _v, s in history if s is not None]))
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


History = list[tuple[Decimal, Decimal | None]]


def history_risks(document: Document, lines: list[CloseLine], now: datetime) -> list[RiskWarning]:
    partner, history = "", []
    if document.partner_id is not None:
        partner = document.partner.code if document.partner else str(document.partner_id)
        history = _partner_history(document, now)
    item_ids = sorted({line.item_id for line in lines if line.item_id is not None})
    if not item_ids:
        return history_risks_from(document, lines, (partner, history), {}, {})
    item_history = item_histories(document.doc_type, item_ids, now)
    from closeout.core.models import Item

    codes = dict(Item.objects.filter(pk__in=item_ids).values_list("pk", "code"))
    return history_risks_from(document, lines, (partner, history), item_history, codes)


def history_risks_from(
    document: Document,
    lines: list[CloseLine],
    partner: tuple[str, History],
    item_history: dict[int, History],
    codes: dict[int, str],
) -> list[RiskWarning]:
    """The history checks given what they read: the partner's code and history, and the
    history and code of each item (for one close, or looked up once for many)."""
    risks: list[RiskWarning] = []
    quantities = has_quantities(document.doc_type)
    if document.partner_id is not None:
        code, history = partner
        risks += _subject_risks(
            "partner", f"往来单位 {code} ", f"partner {code}", lines, history, quantities
        )
    by_item: dict[int, list[CloseLine]] = defaultdict(list)
    for line in lines:
        if line.item_id is not None:
            by_item[line.item_id].append(line)
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
