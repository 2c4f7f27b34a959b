"""Close dimensions (关闭维度) per line: each closes and reopens by itself, by hand and by rule;
events follow the dimension; commitments follow the receiving dimension exactly; the last
dimension closes the line, and reopening one dimension of a closed line keeps the others."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from closeout.audit.models import AuditAction
from closeout.closing.dimension_services import (
    dimensions_sweep,
    line_dimension_close,
    line_dimension_reopen,
)
from closeout.closing.dimensions import closed_dimensions, dimension_states
from closeout.closing.selectors import open_commitments_by_item
from closeout.closing.sweep import sweep_run
from closeout.core.errors import InvalidInput, InvalidTransition, PermissionDenied
from closeout.documents.models import CloseState, Document, EventKind, EventStatus, Line
from tests.factories import (
    PO,
    SO,
    Org,
    actions_since,
    an_item,
    audit_head,
    document_events,
    lenient,
    make_document,
    post,
    set_policy,
    user_with_role,
)

pytestmark = pytest.mark.django_db
S = CloseState


def _line(document: Document, line_no: int = 1) -> Line:
    return Line.objects.get(document=document, line_no=line_no)


def _dims(document: Document, line_no: int = 1) -> dict[str, str]:
    line = _line(document, line_no)
    return dimension_states(
        document.doc_type, line, closed_dimensions([line.pk]).get(line.pk, set())
    )


def _on_order(code: str) -> Decimal:
    commitment = open_commitments_by_item([an_item(code).pk]).get(an_item(code).pk)
    return commitment.on_order if commitment else Decimal(0)


def _close_receiving(actor: User, document: Document, dimension: str = "receiving") -> None:
    """Close line 1 in `dimension` (receiving) by hand, accepting its shortfall."""
    line_dimension_close(
        actor=actor,
        document=document,
        dimension=dimension,
        reason_code="short_delivery_accepted",
        remark="short",
        line_nos=[1],
    )


def _short_po(org: Org, code: str = "DIM-1") -> Document:
    document = make_document(PO, org.team_a1, ((10, 5), (8, 3)), item=an_item(code))
    post(document, EventKind.RECEIPT, 1, 6)
    return document


def test_receiving_close_releases_on_order_exactly_and_reopen_restores(
    org: Org, supervisor: User
) -> None:
    document = _short_po(org)
    assert _on_order("DIM-1") == Decimal(4 + 8)
    seq = audit_head()
    result = line_dimension_close(
        actor=supervisor,
        document=document,
        dimension="receiving",
        reason_code="short_delivery_accepted",
        remark="supplier stopped the item",
        line_nos=[1],
    )
    assert result.released_qty == Decimal(4) and result.lines_closed == []
    assert _on_order("DIM-1") == Decimal(8)
    assert _dims(document) == {"receiving": S.CLOSED, "invoicing": S.OPEN, "payment": S.OPEN}
    assert _line(document).close_state == S.OPEN
    [event] = document_events(document, AuditAction.LINE_DIMENSIONS_CLOSED)
    assert event.seq > seq
    assert event.data["dimension"] == "receiving"
    assert (event.data["from"], event.data["to"]) == (S.OPEN, S.OPEN)
    assert (event.data["dimension_from"], event.data["dimension_to"]) == (S.OPEN, S.CLOSED)
    assert event.data["lines"] == [{"line": 1, "released_qty": "4.0000"}] or Decimal(
        event.data["lines"][0]["released_qty"]
    ) == Decimal(4)

    reopened = line_dimension_reopen(
        actor=supervisor,
        document=document,
        dimension="receiving",
        reason_code="late_delivery",
        line_nos=[1],
    )
    assert reopened.released_qty == Decimal(4)
    assert _on_order("DIM-1") == Decimal(12)
    assert _dims(document)["receiving"] == S.OPEN
    assert AuditAction.LINE_DIMENSIONS_REOPENED in actions_since(seq)


def test_exception_needs_a_remark_and_the_right(org: Org, supervisor: User) -> None:
    document = _short_po(org)
    with pytest.raises(InvalidInput, match="remark"):
        line_dimension_close(
            actor=supervisor,
            document=document,
            dimension="receiving",
            reason_code="short_delivery_accepted",
            line_nos=[1],
        )
    viewer = user_with_role("dim-viewer", "auditor", org.company)
    with pytest.raises(PermissionDenied):
        line_dimension_close(
            actor=viewer,
            document=document,
            dimension="receiving",
            reason_code="short_delivery_accepted",
            remark="x",
            line_nos=[1],
        )
    with pytest.raises(InvalidInput, match="dimension"):
        line_dimension_close(
            actor=supervisor,
            document=document,
            dimension="shipping",
            reason_code="completed",
            remark="x",
        )


def test_receipt_quarantined_invoice_applies_on_a_receiving_closed_line(
    org: Org, supervisor: User
) -> None:
    document = _short_po(org)
    _close_receiving(supervisor, document)
    receipt = post(document, EventKind.RECEIPT, 1, 2)
    assert receipt.outcome == "quarantined"
    assert "closed for receiving" in receipt.event.quarantine_reason
    assert "收货关闭" in receipt.event.quarantine_reason
    invoice = post(document, EventKind.INVOICE, 1, 6, 30)
    assert invoice.outcome == "applied"
    assert _line(document).fulfilled_qty == Decimal(6)
    assert _line(document).invoiced_qty == Decimal(6)
    # Reopening receiving applies the receipt that waited.
    line_dimension_reopen(
        actor=supervisor,
        document=document,
        dimension="receiving",
        reason_code="late_delivery",
        line_nos=[1],
    )
    receipt.event.refresh_from_db()
    assert receipt.event.status == EventStatus.APPLIED
    assert _line(document).fulfilled_qty == Decimal(8)


def test_return_reopens_receiving_when_the_policy_says_so(org: Org, supervisor: User) -> None:
    document = _short_po(org)
    _close_receiving(supervisor, document)
    seq = audit_head()
    returned = post(document, EventKind.RETURN, 1, 1)
    assert returned.outcome == "applied"
    assert _dims(document)["receiving"] == S.OPEN
    reopen = [e for e in document_events(document, AuditAction.LINE_DIMENSIONS_REOPENED)]
    assert reopen and reopen[-1].seq > seq
    assert reopen[-1].data["trigger"] == EventKind.RETURN
    assert _on_order("DIM-1") == Decimal(5 + 8)

    set_policy(PO, return_reopens_dimension=False)
    _close_receiving(supervisor, document)
    held = post(document, EventKind.RETURN, 1, 1)
    assert held.outcome == "quarantined"
    assert _dims(document)["receiving"] == S.CLOSED


def test_last_dimension_closes_the_line_and_the_document(org: Org, supervisor: User) -> None:
    document = make_document(PO, org.team_a1, ((10, 5),), item=an_item("DIM-2"))
    post(document, EventKind.RECEIPT, 1, 6)
    post(document, EventKind.INVOICE, 1, 6, 30)
    post(document, EventKind.PAYMENT, 1, 0, 30)
    for dimension in ("receiving", "invoicing"):
        line_dimension_close(
            actor=supervisor,
            document=document,
            dimension=dimension,
            reason_code="short_delivery_accepted",
            remark="short",
        )
    assert _line(document).close_state == S.OPEN
    result = line_dimension_close(
        actor=supervisor,
        document=document,
        dimension="payment",
        reason_code="short_delivery_accepted",
        remark="short",
    )
    assert result.lines_closed == [1]
    line = _line(document)
    assert line.close_state == S.CLOSED and line.released_qty == Decimal(4)
    assert Document.objects.get(pk=document.pk).close_state == S.CLOSED
    assert _on_order("DIM-2") == 0
    # Reopening one dimension of a closed line needs its document reopened first.
    with pytest.raises(InvalidTransition):
        line_dimension_reopen(
            actor=supervisor,
            document=document,
            dimension="invoicing",
            reason_code="invoice_correction",
            line_nos=[1],
        )


def test_reopening_a_dimension_of_a_closed_line_keeps_the_others(
    org: Org, supervisor: User
) -> None:
    document = make_document(PO, org.team_a1, ((10, 5), (4, 2)), item=an_item("DIM-3"))
    post(document, EventKind.RECEIPT, 1, 6)
    for dimension in ("receiving", "invoicing", "payment"):
        line_dimension_close(
            actor=supervisor,
            document=document,
            dimension=dimension,
            reason_code="short_delivery_accepted",
            remark="short",
            line_nos=[1],
        )
    assert _line(document).close_state == S.CLOSED
    assert _on_order("DIM-3") == Decimal(4)
    line_dimension_reopen(
        actor=supervisor,
        document=document,
        dimension="invoicing",
        reason_code="invoice_correction",
        line_nos=[1],
    )
    line = _line(document)
    assert line.close_state == S.OPEN and line.released_qty == 0
    assert _dims(document) == {"receiving": S.CLOSED, "invoicing": S.OPEN, "payment": S.CLOSED}
    # Still closed for receiving: the open quantity stays off the order book.
    assert _on_order("DIM-3") == Decimal(4)
    assert post(document, EventKind.RECEIPT, 1, 1).outcome == "quarantined"
    assert post(document, EventKind.INVOICE, 1, 6, 30).outcome == "applied"


def test_rule_closes_receiving_within_tolerance_never_the_last_dimension(
    org: Org, supervisor: User
) -> None:
    lenient(PO, under_qty_pct=Decimal(5))
    full = make_document(PO, org.team_a1, ((100, 1), (10, 1)), item=an_item("DIM-4"))
    post(full, EventKind.RECEIPT, 1, 96)
    post(full, EventKind.INVOICE, 1, 96, 96)
    post(full, EventKind.PAYMENT, 1, 0, 96)
    post(full, EventKind.RECEIPT, 2, 5)
    assert dimensions_sweep(doc_type=PO) == 0  # off unless the policy switches it on
    set_policy(PO, auto_close_dimensions=True)
    sweep_run(doc_type=PO)
    # Line 1: receiving and invoicing close by rule; payment, the last, is the sweep's own
    # (the document is not closed: line 2 is short).
    assert _dims(full, 1) == {"receiving": S.CLOSED, "invoicing": S.CLOSED, "payment": S.OPEN}
    assert _dims(full, 2) == {"receiving": S.OPEN, "invoicing": S.OPEN, "payment": S.OPEN}
    assert _on_order("DIM-4") == Decimal(5)
    assert dimensions_sweep(doc_type=PO) == 0
    [first, second] = document_events(full, AuditAction.LINE_DIMENSIONS_CLOSED)
    assert first.actor is None and first.data["kind"] == "auto"
    assert (first.data["dimension"], second.data["dimension"]) == ("receiving", "invoicing")


def test_sales_order_dimensions(org: Org, supervisor: User) -> None:
    document = make_document(SO, org.dept_b, ((10, 5),), item=an_item("DIM-5"))
    post(document, EventKind.SHIPMENT, 1, 7)
    line_dimension_close(
        actor=supervisor,
        document=document,
        dimension="shipping",
        reason_code="short_delivery_accepted",
        remark="customer cancelled the rest",
    )
    assert _dims(document) == {"shipping": S.CLOSED, "invoicing": S.OPEN, "collection": S.OPEN}
    assert post(document, EventKind.SHIPMENT, 1, 1).outcome == "quarantined"
    commitment = open_commitments_by_item([an_item("DIM-5").pk]).get(an_item("DIM-5").pk)
    assert commitment is None or commitment.reserved == 0


def test_report_share_of_lines_closed_per_dimension(org: Org, supervisor: User) -> None:
    from closeout.reports.kpi_base import KpiFilter
    from closeout.reports.kpis import kpi_report

    document = _short_po(org, "DIM-R")
    _close_receiving(supervisor, document)
    admin = user_with_role("dim-admin", "admin", org.company)
    report = kpi_report(admin, KpiFilter(doc_type=PO))
    table = next(t for t in report.tables if t.key == "dimension_share")
    rows = {row[1]: row[2:] for row in table.rows}
    assert (rows.get("收货") or rows["receiving"]) == (2, 1, 0.5)
    assert (rows.get("开票") or rows["invoicing"]) == (2, 0, 0.0)
