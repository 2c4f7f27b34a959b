"""Sales order (销售订单): the rules that decide its close and what a close releases."""

from django.db.models import F

from closeout.closing import rules as r
from closeout.closing.types import CloseSpec

CLOSE = CloseSpec(
    rules=(
        r.fulfilled_within_under_tolerance(
            "shipped",
            "发货在短交容差内",
            "Shipped within under-delivery tolerance",
            "发货",
            "shipped",
            accepted_by="shipping",
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
)
