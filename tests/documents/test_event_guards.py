"""Business-data guards on events (issue 11, item 6): no event may drive a line measure below
zero (a return beyond what was received or shipped, a credit note beyond what was invoiced),
whatever the type; and an external id sent again with other values is a conflict naming the
fields that differ, never a silent duplicate."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from closeout.closing.rules import open_qty_expr
from closeout.closing.services import document_close, document_reopen
from closeout.core.errors import EventConflict, EventRefused
from closeout.documents.models import BusinessEvent, EventKind, EventStatus, Line
from closeout.documents.services import PostOutcome, event_confirm
from closeout.documents.types import SIGNED_MEASURES, Op, all_specs
from tests.factories import (
    AP,
    AR,
    PO,
    PS,
    SC,
    SO,
    Org,
    audit_head,
    make_document,
    post,
    ready_document,
)

pytestmark = pytest.mark.django_db

MEASURES = (
    "fulfilled_qty",
    "returns_open_qty",
    "invoiced_qty",
    "invoiced_amount",
    "settled_amount",
    "counted_qty",
    "adjusted_qty",
    "actual_cost",
)


def measures(document: object, line_no: int = 1) -> dict[str, Decimal | None]:
    line = Line.objects.get(document=document, line_no=line_no)
    return {name: getattr(line, name) for name in MEASURES}


# --- the reproduction: a return larger than what was received --------------------------------


def test_return_beyond_received_is_refused_naming_line_and_quantities(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(10, 5)])
    post(doc, EventKind.RECEIPT, 1, 7, external_id="GRN-7")
    before, head = measures(doc), audit_head()
    with pytest.raises(EventRefused) as refused:
        post(doc, EventKind.RETURN, 1, 10, external_id="RET-10")
    message = refused.value.message
    assert message.startswith(f"{doc.label} line 1: return RET-10 of quantity 10")
    assert "more than received 7 (it would become -3)" in message
    assert refused.value.code == "event_refused" and refused.value.http_status == 409
    assert refused.value.details["measures"] == {
        "fulfilled_qty": {"label": "received", "before": "7", "quantity": "10", "after": "-3"}
    }
    assert refused.value.details["line_no"] == 1 and refused.value.details["field"] == "quantity"
    # Nothing changed: received stays 7, so the open quantity on order stays 3 (not 13), and
    # the event was stored nowhere, so the same external id may come again once it is right.
    assert measures(doc) == before and audit_head() == head
    assert not BusinessEvent.objects.filter(external_id="RET-10").exists()
    line = Line.objects.annotate(open_qty=open_qty_expr()).get(document=doc, line_no=1)
    assert line.open_qty == 3
    post(doc, EventKind.RECEIPT, 1, 3, external_id="GRN-3")
    assert post(doc, EventKind.RETURN, 1, 10, external_id="RET-10").outcome == PostOutcome.APPLIED
    assert measures(doc)["fulfilled_qty"] == 0


def test_return_beyond_shipped_is_refused_and_keeps_open_returns(org: Org) -> None:
    doc = make_document(SO, org.dept_a, [(10, 5)])
    post(doc, EventKind.SHIPMENT, 1, 4)
    before = measures(doc)
    with pytest.raises(EventRefused, match=r"more than shipped 4 \(it would become -1\)"):
        post(doc, EventKind.RETURN, 1, 5)
    assert measures(doc) == before  # open returns not raised either: all or nothing
    assert post(doc, EventKind.RETURN, 1, 4).outcome == PostOutcome.APPLIED
    assert (measures(doc)["fulfilled_qty"], measures(doc)["returns_open_qty"]) == (0, 4)


@pytest.mark.parametrize("doc_type", [PO, SO, AR, AP])
def test_credit_note_beyond_invoiced_quantity_or_amount_is_refused(org: Org, doc_type: str) -> None:
    doc = make_document(doc_type, org.dept_a, [(10, 5)])
    post(doc, EventKind.INVOICE, 1, 3, 15)
    before = measures(doc)
    with pytest.raises(EventRefused) as both:
        post(doc, EventKind.CREDIT_NOTE, 1, 4, 20)
    assert set(both.value.details["measures"]) == {"invoiced_qty", "invoiced_amount"}
    assert "more than invoiced quantity 3" in both.value.message
    assert "more than invoiced amount 15 (it would become -5)" in both.value.message
    with pytest.raises(EventRefused) as amount_only:
        post(doc, EventKind.CREDIT_NOTE, 1, 1, "15.01")
    assert set(amount_only.value.details["measures"]) == {"invoiced_amount"}
    assert amount_only.value.details["field"] == "amount"
    assert measures(doc) == before
    # Exactly what was invoiced may be credited.
    assert post(doc, EventKind.CREDIT_NOTE, 1, 3, 15).outcome == PostOutcome.APPLIED
    assert (measures(doc)["invoiced_qty"], measures(doc)["invoiced_amount"]) == (0, 0)


def test_stock_adjustments_stay_signed(org: Org) -> None:
    """A stock count's adjustment is the one measure that may go below zero (a count below
    book); the count itself is set, never below zero (negative quantities are refused)."""
    doc = make_document(SC, org.dept_a, [(10, 1)])
    post(doc, EventKind.COUNT_RESULT, 1, 4)
    assert post(doc, EventKind.STOCK_ADJUSTMENT, 1, -6).outcome == PostOutcome.APPLIED
    assert post(doc, EventKind.STOCK_ADJUSTMENT, 1, -1).outcome == PostOutcome.APPLIED
    assert measures(doc)["adjusted_qty"] == -7
    assert {"adjusted_qty"} == SIGNED_MEASURES


def test_project_stage_measures_only_grow(org: Org) -> None:
    doc = make_document(PS, org.dept_a, [(3, 10)])
    post(doc, EventKind.TASK_COMPLETION, 1, 2)
    post(doc, EventKind.COST_POSTING, 1, 0, 12)
    assert (measures(doc)["fulfilled_qty"], measures(doc)["actual_cost"]) == (2, 12)


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: str(s.code))
def test_every_event_that_lowers_a_measure_is_guarded(org: Org, spec: object) -> None:
    """For each type, every event kind whose effect lowers a measure, posted on a fresh line
    with more than the line holds, is refused and changes nothing; the kinds that only add,
    set or clear can never go below zero because their quantities and amounts are ≥ 0."""
    lowering = {
        kind: effects
        for kind, effects in spec.effects.items()  # type: ignore[attr-defined]
        if any(e.op is Op.SUBTRACT and e.field not in SIGNED_MEASURES for e in effects)
    }
    for kind, effects in spec.effects.items():  # type: ignore[attr-defined]
        if kind not in lowering:
            assert all(
                e.op in (Op.ADD, Op.SET, Op.CLEAR) or e.field in SIGNED_MEASURES for e in effects
            )
    doc = make_document(spec.code, org.dept_a, [(10, 5)])  # type: ignore[attr-defined]
    for kind, effects in lowering.items():
        before = measures(doc)
        with pytest.raises(EventRefused) as refused:
            post(doc, kind, 1, 1, 1)
        lowered = {e.field for e in effects if e.op is Op.SUBTRACT}
        assert set(refused.value.details["measures"]) == lowered
        assert measures(doc) == before
    assert not BusinessEvent.objects.filter(document=doc).exists()


# --- events stored before they could be checked ------------------------------------------------


def test_quarantined_over_return_stays_quarantined_after_reopen(
    org: Org, operator: User, supervisor: User
) -> None:
    doc = ready_document(PO, org.dept_a, [(10, 5)])
    document_close(actor=operator, document=doc, reason_code="completed")
    late = post(doc, EventKind.RETURN, 1, 12, external_id="RET-LATE").event
    assert late.status == EventStatus.QUARANTINED
    result = document_reopen(actor=supervisor, document=doc, reason_code="audit_finding")
    assert (result.events_applied, result.events_still_quarantined) == (0, 1)
    late.refresh_from_db()
    assert late.status == EventStatus.QUARANTINED
    assert "more than received 10 (it would become -2)" in late.quarantine_reason
    assert measures(doc)["fulfilled_qty"] == 10


def test_pending_over_return_cannot_be_confirmed(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(10, 5)])
    post(doc, EventKind.RECEIPT, 1, 2)
    pending = post(doc, EventKind.RETURN, 1, 3, pending=True).event
    with pytest.raises(EventRefused, match="more than received 2"):
        event_confirm(actor=None, event_id=pending.pk)
    pending.refresh_from_db()
    assert pending.status == EventStatus.PENDING and measures(doc)["fulfilled_qty"] == 2


# --- the same external id with other values ----------------------------------------------------


def test_same_external_id_with_another_quantity_is_a_conflict(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(10, 5), (10, 5)])
    first = post(doc, EventKind.RECEIPT, 1, 5, external_id="GRN-5")
    before, head = measures(doc), audit_head()
    with pytest.raises(EventConflict) as conflict:
        post(doc, EventKind.RECEIPT, 1, 6, external_id="GRN-5")
    assert conflict.value.code == "event_conflict" and conflict.value.http_status == 409
    assert conflict.value.details["fields"] == {"quantity": {"stored": "5", "sent": "6"}}
    assert "GRN-5" in conflict.value.message and "quantity 5 (sent 6)" in conflict.value.message
    assert measures(doc) == before and audit_head() == head
    # Amount, line and business date are compared too; several differences are all named.
    with pytest.raises(EventConflict) as many:
        post(doc, EventKind.RECEIPT, 2, 5, 9, external_id="GRN-5", days_ago=3)
    assert set(many.value.details["fields"]) == {"line_no", "amount", "occurred_at"}
    assert many.value.details["fields"]["line_no"] == {"stored": 1, "sent": 2}
    # An identical repeat (the same number written another way) is a duplicate, as before.
    again = post(doc, EventKind.RECEIPT, 1, "5.000", external_id="GRN-5")
    assert again.outcome == PostOutcome.DUPLICATE and again.event.pk == first.event.pk
    assert measures(doc) == before and audit_head() == head
