"""Sales order (销售订单): shipments, customer returns, invoices, collections."""

from django.db.models import F

from closeout.closing import rules as r
from closeout.documents.models import DocType, EventKind
from closeout.documents.types import Commitment, DocTypeSpec, Effect, Op

SPEC = DocTypeSpec(
    code=DocType.SALES_ORDER,
    label_zh="销售订单",
    label_en="Sales order",
    measure_names={"fulfilled_qty": "shipped", "settled_amount": "collected"},
    effects={
        EventKind.SHIPMENT: (Effect("fulfilled_qty", "quantity"),),
        # A customer return takes goods back and waits for its credit note.
        EventKind.RETURN: (
            Effect("fulfilled_qty", "quantity", Op.SUBTRACT),
            Effect("returns_open_qty", "quantity"),
        ),
        EventKind.INVOICE: (
            Effect("invoiced_qty", "quantity"),
            Effect("invoiced_amount", "amount"),
        ),
        EventKind.CREDIT_NOTE: (
            Effect("invoiced_qty", "quantity", Op.SUBTRACT),
            Effect("invoiced_amount", "amount", Op.SUBTRACT),
            Effect("returns_open_qty", "quantity", Op.CLEAR),
        ),
        EventKind.PAYMENT: (Effect("settled_amount", "amount"),),
    },
    rules=(
        r.fulfilled_within_under_tolerance(
            "shipped",
            "发货在短交容差内",
            "Shipped within under-delivery tolerance",
            "发货",
            "shipped",
        ),
        r.fulfilled_within_over_tolerance(
            "not_over_shipped", "未超量发货", "Not over-shipped beyond tolerance", "发货", "shipped"
        ),
        r.invoiced_qty_matches("invoice_qty_match", "shipped"),
        r.invoiced_amount_matches("invoice_amount_match", "shipped"),
        r.invoice_settled("collected", "已收款", "Invoices collected"),
        r.no_open_returns(),
        r.no_line_on_hold(),
        r.events_settled(),
        r.grace_period(),
    ),
    released_qty=r.open_qty_expr,
    released_value=lambda: r.open_qty_expr() * F("unit_price"),
    commitment=Commitment.RESERVED,
)
