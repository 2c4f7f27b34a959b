"""What receivables and payables share in their close: the open balance within the write-off
tolerance, each invoice matching the amount of its source order; a close releases the open
balance."""

from django.db.models import Expression, F
from django.db.models.functions import Abs, Greatest

from closeout.closing import rules as r
from closeout.closing.models import Severity
from closeout.closing.types import CloseSpec


def _open_balance() -> Expression:
    return r.num(F("invoiced_amount") - F("settled_amount"))


def settlement_close(pay_zh: str, pay_en: str) -> CloseSpec:
    return CloseSpec(
        rules=(
            r.Rule(
                code="balance_within_write_off",
                label_zh="未结余额在核销容差内",
                label_en="Open balance within write-off tolerance",
                severity=Severity.EXCEPTION,
                scope=r.Scope.DOCUMENT,
                failing=lambda p: r.more_than(
                    r.line_sum(_open_balance()), r.dec(p.write_off_amount)
                ),
                measures=lambda p: {"open_balance": r.line_sum(_open_balance())},
                threshold=lambda p: f"invoiced − settled ≤ {r._pct(p.write_off_amount)}",
                hint_zh=f"等待{pay_zh}，或以核销原因手工结案（例外审批）。",
                hint_en=f"Wait for the {pay_en}, or close by hand with a write-off reason.",
            ),
            r.Rule(
                code="invoice_matches_order",
                label_zh="发票金额与源订单金额一致",
                label_en="Invoiced amount matches the source order amount",
                severity=Severity.EXCEPTION,
                scope=r.Scope.LINE,
                # Scaled by 100 instead of dividing: SQLite divides integers as integers.
                failing=lambda p: r.more_than(
                    Abs(r.num(F("invoiced_amount") - F("planned_amount"))) * r.dec(100),
                    Greatest(
                        r.dec(p.amount_tolerance_abs * 100),
                        F("planned_amount") * r.dec(p.amount_tolerance_pct),
                    ),
                ),
                measures=lambda p: {
                    "order_amount": F("planned_amount"),
                    "invoiced_amount": F("invoiced_amount"),
                },
                threshold=lambda p: (
                    f"|invoiced − order| ≤ max({r._pct(p.amount_tolerance_abs)}, "
                    f"{r._pct(p.amount_tolerance_pct)}%), per line"
                ),
                hint_zh="核对发票与源订单，开具红字发票或补开发票。",
                hint_en="Reconcile the invoice with its order: credit note or extra invoice.",
            ),
            r.no_line_on_hold(),
            r.events_settled(),
            r.grace_period(),
        ),
        released_qty=lambda: r.dec(0),
        released_value=lambda: Greatest(_open_balance(), r.dec(0)),
    )
