"""Purchase order (采购订单): receipts, returns to supplier, supplier invoices, payments."""

from django.db.models import F

from closeout.closing import rules as r
from closeout.documents.models import DocType, EventKind
from closeout.documents.types import Commitment, DocTypeSpec, Effect, Op

SPEC = DocTypeSpec(
    code=DocType.PURCHASE_ORDER,
    label_zh="采购订单",
    label_en="Purchase order",
    measure_names={"fulfilled_qty": "received", "settled_amount": "paid"},
    effects={
        EventKind.RECEIPT: (Effect("fulfilled_qty", "quantity"),),
        EventKind.RETURN: (Effect("fulfilled_qty", "quantity", Op.SUBTRACT),),
        EventKind.INVOICE: (
            Effect("invoiced_qty", "quantity"),
            Effect("invoiced_amount", "amount"),
        ),
        EventKind.CREDIT_NOTE: (
            Effect("invoiced_qty", "quantity", Op.SUBTRACT),
            Effect("invoiced_amount", "amount", Op.SUBTRACT),
        ),
        EventKind.PAYMENT: (Effect("settled_amount", "amount"),),
    },
    rules=(
        r.fulfilled_within_under_tolerance(
            "received",
            "收货在短交容差内",
            "Received within under-delivery tolerance",
            "收货",
            "received",
        ),
        r.fulfilled_within_over_tolerance(
            "not_over_received",
            "未超量收货",
            "Not over-received beyond tolerance",
            "收货",
            "received",
        ),
        r.invoiced_qty_matches("invoice_qty_match", "received"),
        r.invoiced_amount_matches("invoice_amount_match", "received"),
        r.invoice_settled("paid", "已付款", "Invoices paid"),
        r.no_line_on_hold(),
        r.events_settled(),
        r.grace_period(),
    ),
    released_qty=r.open_qty_expr,
    released_value=lambda: r.open_qty_expr() * F("unit_price"),
    commitment=Commitment.ON_ORDER,
)
