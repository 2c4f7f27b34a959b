"""Consistency checks of amounts, per document over its lines' totals: the invoiced amount
against the order amount, and receivables/payables settled beyond the invoice, each beyond the
close policy's amount tolerance.
"""

import operator
from collections.abc import Callable
from functools import reduce
from typing import Any

from django.db.models import Case, CharField, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Abs, Greatest
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from closeout.closing.models import ClosePolicy
from closeout.closing.rules import dec, more_than, num
from closeout.documents.models import DocType, Document, Line
from closeout.reports.diagnostic_base import (
    Check,
    Column,
    Options,
    by_policy,
    document_rows,
    lines_total,
)

AMOUNT_TYPES = (
    DocType.PURCHASE_ORDER,
    DocType.SALES_ORDER,
    DocType.RECEIVABLE,
    DocType.PAYABLE,
)
SETTLEMENT_TYPES = (DocType.RECEIVABLE, DocType.PAYABLE)


def _documents_by_totals(
    types: tuple[str, ...], sums: dict[str, Any], build: Callable[[ClosePolicy], Q]
) -> QuerySet[Document]:
    """Documents whose line totals meet `build(policy)` under their own policy: one GROUP BY
    over the lines with the condition in HAVING, so the totals are computed in one pass."""
    # No "match nothing" seed such as Q(pk__in=[]): a line column in HAVING would join the
    # GROUP BY and split the documents into their lines.
    parts = [
        where & failing for t in types for where, failing in by_policy(t, build, on_lines=True)
    ]
    if not parts:
        return Document.objects.none()
    condition = reduce(operator.or_, parts)
    grouped = (
        Line.objects.filter(document__doc_type__in=types)
        .values("document_id", "document__doc_type", "document__org_unit__path")
        .annotate(**sums)
        .filter(condition)
        .values("document_id")
    )
    return Document.objects.filter(pk__in=grouped)


def order_vs_invoice_amount(options: Options) -> QuerySet[Any]:
    """Per document: the invoiced amount against the order amount, beyond the policy's amount
    tolerance, once the comparison is due: always for receivables/payables with an invoice and
    for over-invoiced orders; for orders when every line is fully received/shipped."""
    order, invoiced = F("order_amount"), F("invoiced_total")
    due = more_than(invoiced, dec(0)) & (
        Q(document__doc_type__in=SETTLEMENT_TYPES) | more_than(invoiced, order) | Q(short_lines=0)
    )

    def beyond(p: ClosePolicy) -> Q:
        return due & more_than(
            Abs(num(invoiced - order)) * dec(100),
            Greatest(dec(p.amount_tolerance_abs * 100), order * dec(p.amount_tolerance_pct)),
        )

    short = Case(When(fulfilled_qty__lt=F("planned_qty"), then=Value(1)), default=Value(0))
    sums = {
        "order_amount": Sum("planned_amount"),
        "invoiced_total": Sum("invoiced_amount"),
        "short_lines": Sum(short),
    }
    qs = _documents_by_totals(AMOUNT_TYPES, sums, beyond).annotate(
        order_amount=lines_total("planned_amount"),
        invoiced_total=lines_total("invoiced_amount"),
        problem=Value("invoice_amount_differs", output_field=CharField()),
    )
    return document_rows(
        qs,
        order_value=F("order_amount"),
        invoiced_value=F("invoiced_total"),
        difference=num(F("invoiced_total") - F("order_amount")),
    )


def settled_beyond_invoice(options: Options) -> QuerySet[Any]:
    """Receivables and payables paid or collected beyond their invoiced amount (more than the
    policy's absolute amount tolerance)."""
    settled, invoiced = F("settled_total"), F("invoiced_total")
    sums = {"invoiced_total": Sum("invoiced_amount"), "settled_total": Sum("settled_amount")}
    qs = _documents_by_totals(
        SETTLEMENT_TYPES,
        sums,
        lambda p: more_than(settled, invoiced + dec(p.amount_tolerance_abs)),
    ).annotate(
        invoiced_total=lines_total("invoiced_amount"),
        settled_total=lines_total("settled_amount"),
        problem=Value("settled_beyond_invoice", output_field=CharField()),
    )
    return document_rows(
        qs,
        invoiced_value=F("invoiced_total"),
        settled_value=F("settled_total"),
        excess=num(F("settled_total") - F("invoiced_total")),
    )


ORDER_INVOICE_AMOUNT = Check(
    "order_invoice_amount",
    _("Order amount vs invoice amount"),
    _(
        "Compare the invoices with the order (price, quantity, tax): request a credit note "
        "or a further invoice, or correct the order amount in the ERP and sync it again."
    ),
    "document",
    (
        Column("order_value", _("Order amount")),
        Column("invoiced_value", _("Invoiced amount")),
        Column("difference", _("Difference")),
    ),
    order_vs_invoice_amount,
)
SETTLED_BEYOND_INVOICE = Check(
    "settled_beyond_invoice",
    _("Receivables/payables settled beyond the invoice"),
    _(
        "More was paid or collected than invoiced: find the duplicate or misallocated "
        "payment and reverse or reallocate it, or post the missing invoice."
    ),
    "document",
    (
        Column("invoiced_value", _("Invoiced amount")),
        Column("settled_value", _("Settled amount")),
        Column("excess", _("Excess")),
    ),
    settled_beyond_invoice,
)

AMOUNT_PROBLEMS: dict[str, str | Promise] = {
    "invoice_amount_differs": _("invoiced amount differs from the order amount"),
    "settled_beyond_invoice": _("settled more than invoiced"),
}
