"""Consistency checks of quantities, line by line: orders (ordered vs received/shipped vs
invoiced, with the close policy's tolerances) and stock counts (no negative resulting stock).
Each reuses the closing rule that says what "wrong" means, so a check and the close never
disagree about a line.
"""

from collections.abc import Callable
from typing import Any

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from closeout.closing.rules import dec, less_than, more_than, num
from closeout.closing.types import close_spec_for
from closeout.documents.models import DocType, Line
from closeout.reports.diagnostic_base import (
    CLOSED_STATES,
    Check,
    Column,
    Options,
    by_policy,
    labelled,
    line_rows,
)


def order_quantities(doc_type: str, over_rule: str) -> Callable[[Options], QuerySet[Any]]:
    """Order lines: ordered vs received/shipped vs invoiced, with the policy's tolerances."""

    def query(options: Options) -> QuerySet[Any]:
        close = close_spec_for(doc_type)
        over, match = (
            close.rule(over_rule),
            close.rule("invoice_qty_match"),
        )
        negative = Q(fulfilled_qty__lt=0) | Q(invoiced_qty__lt=0)
        problems = [
            ("negative_quantity", by_policy(doc_type, lambda p: negative, on_lines=True)),
            ("over_fulfilled", by_policy(doc_type, over.failing, on_lines=True)),
            (
                "invoiced_beyond_fulfilled",
                by_policy(
                    doc_type,
                    lambda p: match.failing(p) & more_than(F("invoiced_qty"), F("fulfilled_qty")),
                    on_lines=True,
                ),
            ),
            (
                "closed_not_invoiced_as_fulfilled",
                by_policy(
                    doc_type,
                    lambda p: match.failing(p) & Q(close_state__in=CLOSED_STATES),
                    on_lines=True,
                ),
            ),
        ]
        return line_rows(
            labelled(Line.objects.all(), problems),
            ordered=F("planned_qty"),
            fulfilled=F("fulfilled_qty"),
            invoiced=F("invoiced_qty"),
        )

    return query


def negative_stock(options: Options) -> QuerySet[Any]:
    """Stock-count lines whose book quantity plus posted adjustments is below zero (the stock
    count's own rule no_negative_stock), or with a negative count."""
    rule = close_spec_for(DocType.STOCK_COUNT).rule("no_negative_stock")
    problems = [
        ("negative_resulting_stock", by_policy(DocType.STOCK_COUNT, rule.failing, on_lines=True)),
        (
            "negative_count",
            by_policy(
                DocType.STOCK_COUNT,
                lambda p: less_than(Coalesce("counted_qty", dec(0)), dec(0)),
                on_lines=True,
            ),
        ),
    ]
    return line_rows(
        labelled(Line.objects.all(), problems),
        book=F("planned_qty"),
        counted=F("counted_qty"),
        adjusted=F("adjusted_qty"),
        resulting=num(F("planned_qty") + F("adjusted_qty")),
    )


_QTY = (
    Column("ordered", _("Ordered")),
    Column("fulfilled", _("Received / shipped")),
    Column("invoiced", _("Invoiced qty")),
)

PO_QUANTITIES = Check(
    "po_quantities",
    _("Purchase orders: ordered vs received vs invoiced"),
    _(
        "Over-received lines: return the excess or confirm it. Invoiced beyond received: "
        "ask the supplier for a credit note or post the missing receipt. Closed lines not "
        "invoiced as received: reopen the order and post the invoice or credit note."
    ),
    "line",
    _QTY,
    order_quantities(DocType.PURCHASE_ORDER, "not_over_received"),
)
SO_QUANTITIES = Check(
    "so_quantities",
    _("Sales orders: ordered vs shipped vs invoiced"),
    _(
        "Over-shipped lines: check the delivery and the customer's acceptance. Invoiced "
        "beyond shipped: issue a credit note or post the missing shipment. Closed lines not "
        "invoiced as shipped: reopen the order and invoice or credit the difference."
    ),
    "line",
    _QTY,
    order_quantities(DocType.SALES_ORDER, "not_over_shipped"),
)
NEGATIVE_STOCK = Check(
    "negative_stock",
    _("Negative stock after counts"),
    _(
        "Check the stock adjustments posted for these count lines and reverse the wrong one; "
        "a negative count is a typing error: post the corrected count result."
    ),
    "line",
    (
        Column("book", _("Book qty")),
        Column("counted", _("Counted qty")),
        Column("adjusted", _("Adjusted qty")),
        Column("resulting", _("Resulting stock")),
    ),
    negative_stock,
)

QUANTITY_PROBLEMS: dict[str, str | Promise] = {
    "negative_quantity": _("negative received/shipped or invoiced quantity"),
    "over_fulfilled": _("received/shipped beyond the over-delivery tolerance"),
    "invoiced_beyond_fulfilled": _("invoiced more than received/shipped"),
    "closed_not_invoiced_as_fulfilled": _("closed with invoiced ≠ received/shipped"),
    "negative_resulting_stock": _("book + adjustments below zero"),
    "negative_count": _("negative count result"),
}
