"""Posting business events: idempotent by external id, pending and confirmed, bad input refused,
and the lock (S11): an event for a closed or held line or document is quarantined (stored,
flagged, never applied, never dropped) and applies in arrival order after reopen or release."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.services import (
    document_close,
    document_hold,
    document_release,
    document_reopen,
)
from closeout.core.errors import EventConflict, InvalidInput, NotFound
from closeout.documents.models import BusinessEvent, EventKind, EventStatus, Line
from closeout.documents.services import PostOutcome, event_confirm
from tests.factories import (
    PO,
    PS,
    SC,
    Org,
    actions_since,
    audit_head,
    make_document,
    post,
    ready_document,
)

pytestmark = pytest.mark.django_db

A = AuditAction


def fulfilled(document: object, line_no: int = 1) -> Decimal:
    return Line.objects.get(document=document, line_no=line_no).fulfilled_qty


# --- idempotency -----------------------------------------------------------------------------


def test_same_external_id_twice_is_a_duplicate(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(100, 1)])
    first = post(doc, EventKind.RECEIPT, 1, 30, external_id="GRN-1")
    before = audit_head()
    again = post(doc, EventKind.RECEIPT, 1, 30, external_id="GRN-1")
    assert (first.outcome, again.outcome) == (PostOutcome.APPLIED, PostOutcome.DUPLICATE)
    assert again.event.pk == first.event.pk
    assert fulfilled(doc) == 30
    assert BusinessEvent.objects.filter(external_id="GRN-1").count() == 1
    assert audit_head() == before


def test_external_id_of_another_document_is_refused(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(100, 1)])
    other = make_document(PO, org.dept_a, [(100, 1)])
    post(doc, EventKind.RECEIPT, 1, 30, external_id="GRN-2")
    with pytest.raises(EventConflict, match=r"GRN-2.*another document") as elsewhere:
        post(other, EventKind.RECEIPT, 1, 30, external_id="GRN-2")
    assert elsewhere.value.details["fields"] == {
        "document": {"stored": doc.label, "sent": other.label}
    }
    with pytest.raises(EventConflict, match="GRN-2") as other_kind:
        post(doc, EventKind.INVOICE, 1, 30, 30, external_id="GRN-2")  # same id, other kind
    assert set(other_kind.value.details["fields"]) == {"kind", "amount"}
    assert fulfilled(other) == 0


def test_pending_event_applies_only_when_confirmed(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(100, 1)])
    before = audit_head()
    result = post(doc, EventKind.RECEIPT, 1, 40, pending=True)
    assert result.outcome == PostOutcome.PENDING and fulfilled(doc) == 0
    confirmed = event_confirm(actor=None, event_id=result.event.pk)
    assert confirmed.outcome == PostOutcome.APPLIED and fulfilled(doc) == 40
    with pytest.raises(InvalidInput, match="not pending"):
        event_confirm(actor=None, event_id=result.event.pk)
    assert fulfilled(doc) == 40
    assert actions_since(before) == [A.EVENT_PENDING, A.EVENT_CONFIRMED]


def test_pending_event_confirmed_after_close_is_quarantined(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(1, 1), (1, 1)])
    pending = post(doc, EventKind.RECEIPT, 2, 1, pending=True)
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[2])
    confirmed = event_confirm(actor=None, event_id=pending.event.pk)
    assert confirmed.outcome == PostOutcome.QUARANTINED
    assert confirmed.event.quarantine_reason == "line 2 is closed"
    assert fulfilled(doc, 2) == 1


# --- bad input -------------------------------------------------------------------------------


def test_bad_events_are_refused_with_a_clear_message(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(10, 1)])
    with pytest.raises(InvalidInput, match="must not be negative") as negative:
        post(doc, EventKind.RECEIPT, 1, -1)
    assert negative.value.details["field"] == "quantity"
    with pytest.raises(InvalidInput, match="must not be negative"):
        post(doc, EventKind.PAYMENT, 1, 0, "-5")
    with pytest.raises(InvalidInput, match="takes no 'shipment' events"):
        post(doc, EventKind.SHIPMENT, 1, 1)
    with pytest.raises(InvalidInput, match="unknown event kind 'delivery'"):
        post(doc, "delivery", 1, 1)
    with pytest.raises(InvalidInput, match="needs a line number"):
        post(doc, EventKind.RECEIPT, None, 1)
    with pytest.raises(NotFound, match="has no line 7"):
        post(doc, EventKind.RECEIPT, 7, 1)
    with pytest.raises(InvalidInput, match="not a number"):
        post(doc, EventKind.RECEIPT, 1, "ten")
    with pytest.raises(InvalidInput, match="external id is empty"):
        post(doc, EventKind.RECEIPT, 1, 1, external_id=" ")
    assert BusinessEvent.objects.filter(document=doc).count() == 0
    assert fulfilled(doc) == 0


def test_stock_adjustment_is_signed(org: Org) -> None:
    doc = make_document(SC, org.dept_a, [(10, 1)])
    post(doc, EventKind.COUNT_RESULT, 1, 7)
    post(doc, EventKind.STOCK_ADJUSTMENT, 1, -3)
    assert Line.objects.get(document=doc).adjusted_qty == -3


# --- quarantine (S11) --------------------------------------------------------------------------


def test_event_for_a_closed_line_is_quarantined_not_applied(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(10, 1), (10, 1)])
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[1])
    before = audit_head()
    result = post(doc, EventKind.RECEIPT, 1, 5)
    assert result.outcome == PostOutcome.QUARANTINED
    stored = BusinessEvent.objects.get(pk=result.event.pk)
    assert (stored.status, stored.quarantine_reason) == (
        EventStatus.QUARANTINED,
        "line 1 is closed",
    )
    assert stored.applied_at is None
    assert fulfilled(doc, 1) == 10
    assert actions_since(before) == [A.EVENT_QUARANTINED]
    assert AuditEvent.objects.get(seq=before + 1).reason == "line 1 is closed"
    # The open line still takes events.
    assert post(doc, EventKind.INVOICE, 2, 0, 0).outcome == PostOutcome.APPLIED


@pytest.mark.parametrize("how", ["closed", "on_hold"])
def test_event_for_a_closed_or_held_document_is_quarantined(
    org: Org, operator: User, how: str
) -> None:
    doc = ready_document(PO, org.dept_a)
    if how == "closed":
        document_close(actor=operator, document=doc, reason_code="completed")
    else:
        document_hold(actor=operator, document=doc, reason="audit")
    result = post(doc, EventKind.RECEIPT, 1, 3)
    assert result.outcome == PostOutcome.QUARANTINED
    assert result.event.quarantine_reason == f"document is {how}"
    assert fulfilled(doc) == 10
    # Posting it again is still a duplicate, never a second quarantined copy.
    again = post(doc, EventKind.RECEIPT, 1, 3, external_id=result.event.external_id)
    assert again.outcome == PostOutcome.DUPLICATE
    assert BusinessEvent.objects.filter(document=doc, status=EventStatus.QUARANTINED).count() == 1


def test_quarantined_events_apply_in_arrival_order_after_reopen(
    org: Org, operator: User, supervisor: User
) -> None:
    doc = ready_document(SC, org.dept_a, [(10, 1), (10, 1)])
    document_close(actor=operator, document=doc, reason_code="completed")
    # Count results SET the counted quantity: the final value proves the order of application.
    ids = [post(doc, EventKind.COUNT_RESULT, 1, q).event.external_id for q in (11, 8, 9)]
    before = audit_head()
    result = document_reopen(actor=supervisor, document=doc, reason_code="audit_finding")
    assert (result.events_applied, result.events_still_quarantined) == (3, 0)
    assert Line.objects.get(document=doc, line_no=1).counted_qty == 9
    assert actions_since(before) == [
        A.EVENT_RELEASED_FROM_QUARANTINE,
        A.EVENT_RELEASED_FROM_QUARANTINE,
        A.EVENT_RELEASED_FROM_QUARANTINE,
        A.DOCUMENT_REOPENED,
    ]
    released = AuditEvent.objects.filter(seq__gt=before, action=A.EVENT_RELEASED_FROM_QUARANTINE)
    assert [e.data["event"] for e in released.order_by("seq")] == ids
    assert not BusinessEvent.objects.filter(document=doc, status=EventStatus.QUARANTINED).exists()


def test_events_for_lines_still_closed_stay_quarantined(
    org: Org, operator: User, supervisor: User
) -> None:
    doc = ready_document(PO, org.dept_a, [(10, 1), (10, 1)])
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[1])
    document_close(actor=operator, document=doc, reason_code="completed")
    on_line_1 = post(doc, EventKind.RETURN, 1, 2).event
    on_line_2 = post(doc, EventKind.RETURN, 2, 4).event
    assert on_line_2.quarantine_reason == "document is closed"
    result = document_reopen(actor=supervisor, document=doc, reason_code="late_delivery")
    assert (result.events_applied, result.events_still_quarantined) == (1, 1)
    on_line_1.refresh_from_db()
    on_line_2.refresh_from_db()
    assert (on_line_2.status, fulfilled(doc, 2)) == (EventStatus.APPLIED, 6)
    assert on_line_1.status == EventStatus.QUARANTINED
    assert on_line_1.quarantine_reason == "line 1 is closed"
    assert fulfilled(doc, 1) == 10


def test_quarantined_events_apply_after_release(org: Org, operator: User) -> None:
    doc = make_document(PS, org.dept_a, [(3, 10), (3, 10)])
    document_hold(actor=operator, document=doc, reason="budget review", line_nos=[2])
    held_line = post(doc, EventKind.TASK_COMPLETION, 2, 1).event
    assert held_line.quarantine_reason == "line 2 is on_hold"
    document_hold(actor=operator, document=doc, reason="client audit")
    acceptance = post(doc, EventKind.ACCEPTANCE, None).event
    assert acceptance.quarantine_reason == "document is on_hold"
    doc.refresh_from_db()
    assert doc.accepted_on is None
    document_release(actor=operator, document=doc, reason="done")
    doc.refresh_from_db()
    acceptance.refresh_from_db()
    held_line.refresh_from_db()
    assert acceptance.status == EventStatus.APPLIED and doc.accepted_on is not None
    assert held_line.status == EventStatus.QUARANTINED  # its line is still held
    document_release(actor=operator, document=doc, reason="ok", line_nos=[2])
    held_line.refresh_from_db()
    assert held_line.status == EventStatus.APPLIED and fulfilled(doc, 2) == 1
