"""Purchase order (采购订单): the rules that decide its close and what a close releases."""

from django.db.models import F

from closeout.closing import rules as r
from closeout.closing.types import CloseSpec

CLOSE = CloseSpec(
    rules=(
        r.fulfilled_within_under_tolerance(
            "received",
            "收货在短交容差内",
            "Received within under-delivery tolerance",
            "收货",
            "received",
            accepted_by="receiving",
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
)
