"""Stock count (库存盘点): the rules that decide its close and what a close releases."""

from django.db.models import F, Q
from django.db.models.functions import Abs

from closeout.closing import rules as r
from closeout.closing.models import Severity
from closeout.closing.types import CloseSpec

_VARIANCE = r.num(F("counted_qty") - F("planned_qty"))

CLOSE = CloseSpec(
    rules=(
        r.Rule(
            code="all_counted",
            label_zh="所有行已盘点",
            label_en="Every line counted",
            severity=Severity.BLOCKING,
            scope=r.Scope.LINE,
            failing=lambda p: Q(counted_qty__isnull=True),
            measures=lambda p: {"book": F("planned_qty"), "counted": F("counted_qty")},
            threshold=lambda p: "a count result on every line",
            hint_zh="录入未盘点行的盘点结果。",
            hint_en="Enter the count result for the lines not yet counted.",
        ),
        r.Rule(
            code="variance_posted",
            label_zh="盘点差异已全部调整过账",
            label_en="Every variance posted as an adjustment",
            severity=Severity.BLOCKING,
            scope=r.Scope.LINE,
            failing=lambda p: (
                Q(counted_qty__isnull=False)
                & r.more_than(r.num(Abs(r.num(F("adjusted_qty") - _VARIANCE))), r.dec(0))
            ),
            measures=lambda p: {"variance": _VARIANCE, "adjusted": F("adjusted_qty")},
            threshold=lambda p: "adjusted = counted − book, per line",
            hint_zh="为差异过账库存调整单。",
            hint_en="Post the stock adjustment for the variance.",
        ),
        r.Rule(
            code="no_negative_stock",
            label_zh="调整后库存不为负",
            label_en="No negative resulting stock",
            severity=Severity.BLOCKING,
            scope=r.Scope.LINE,
            failing=lambda p: r.less_than(F("planned_qty") + F("adjusted_qty"), r.dec(0)),
            measures=lambda p: {"resulting": r.num(F("planned_qty") + F("adjusted_qty"))},
            threshold=lambda p: "book + adjustments ≥ 0, per line",
            hint_zh="核对调整数量，冲销错误的调整。",
            hint_en="Check the adjustments and reverse the wrong one.",
        ),
        r.Rule(
            code="variance_value",
            label_zh="盘点差异金额在限额内",
            label_en="Total variance value within the limit",
            severity=Severity.EXCEPTION,
            scope=r.Scope.DOCUMENT,
            failing=lambda p: r.more_than(
                r.line_sum(Abs(_VARIANCE) * F("unit_price")), r.dec(p.variance_value_limit)
            ),
            measures=lambda p: {"variance_value": r.line_sum(Abs(_VARIANCE) * F("unit_price"))},
            threshold=lambda p: f"Σ |variance| × price ≤ {r._pct(p.variance_value_limit)}",
            hint_zh="差异金额超限：复盘确认后以原因手工结案（例外审批）。",
            hint_en="Variance above the limit: recount, then close by hand with a reason.",
        ),
        r.no_line_on_hold(),
        r.events_settled(),
        r.grace_period(),
    ),
    released_qty=lambda: r.dec(0),
    released_value=lambda: r.dec(0),
)
