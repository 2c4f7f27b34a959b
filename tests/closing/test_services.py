"""Close, line close, reopen, hold and release: every transition allowed and refused, roll-up of
lines to the header, reopen restoring exactly what its close changed, open commitments, the
manual-close guards and the audit events each change writes."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.selectors import open_commitments_by_item
from closeout.closing.services import (
    document_close,
    document_hold,
    document_release,
    document_reopen,
)
from closeout.closing.states import DOCUMENT_TRANSITIONS, Action, allowed_actions, next_state
from closeout.core.errors import InvalidInput, InvalidTransition, RuleFailed
from closeout.documents.models import CloseKind, CloseState, Document, EventKind, Line
from tests.factories import (
    PO,
    SO,
    Org,
    actions_since,
    an_item,
    audit_head,
    make_document,
    post,
    ready_document,
)

pytestmark = pytest.mark.django_db

A = AuditAction


def state(document: Document) -> str:
    return Document.objects.get(pk=document.pk).close_state


def line_states(document: Document) -> dict[int, str]:
    return dict(Line.objects.filter(document=document).values_list("line_no", "close_state"))


# --- the transition table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "action"), list(itertools.product(CloseState.values, list(Action)))
)
def test_transition_table_allows_exactly_what_it_lists(current: str, action: Action) -> None:
    if (current, action) in DOCUMENT_TRANSITIONS:
        assert next_state("PO X", current, action) == DOCUMENT_TRANSITIONS[(current, action)]
    else:
        with pytest.raises(InvalidTransition) as refused:
            next_state("PO X", current, action)
        details = refused.value.details
        assert details["state"] == current and details["action"] == action
        assert details["allowed"] == [str(a) for a in allowed_actions(current)]
        assert "PO X" in refused.value.message and "PO X" in details["message_zh"]


def test_a_refusal_says_what_is_allowed_in_english_and_chinese() -> None:
    with pytest.raises(InvalidTransition) as refused:
        next_state("purchase_order PO1", CloseState.ON_HOLD, Action.REOPEN)
    assert refused.value.message == (
        "purchase_order PO1 is on hold: cannot reopen; allowed from here: release"
    )
    assert refused.value.details["message_zh"] == (
        "purchase_order PO1 当前为冻结：不能反结案；当前可执行：解冻"
    )


def test_reopen_and_release_are_different_actions() -> None:
    # Both end in open, from different states: the table is keyed by action.
    assert next_state("d", CloseState.CLOSED, Action.REOPEN) == CloseState.OPEN
    assert next_state("d", CloseState.ON_HOLD, Action.RELEASE) == CloseState.OPEN
    for state, action in [
        (CloseState.ON_HOLD, Action.REOPEN),
        (CloseState.CLOSED, Action.RELEASE),
        (CloseState.CLOSE_PENDING, Action.REOPEN),
        (CloseState.CLOSE_PENDING, Action.RELEASE),
        (CloseState.CLOSED, Action.WITHDRAW_CLOSE),
        (CloseState.ON_HOLD, Action.WITHDRAW_CLOSE),
    ]:
        with pytest.raises(InvalidTransition):
            next_state("d", state, action)


def test_archived_is_final() -> None:
    assert allowed_actions(CloseState.ARCHIVED) == []
    assert allowed_actions(CloseState.ARCHIVED, lines=True) == []


# --- close ---------------------------------------------------------------------------------------


def test_close_an_open_document(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(10, 5), (4, 2)])
    before = audit_head()
    result = document_close(actor=operator, document=doc, reason_code="completed")
    assert result.header_closed and result.lines_closed == [1, 2]
    doc.refresh_from_db()
    assert (doc.close_state, doc.close_kind, doc.close_reason) == ("closed", "manual", "completed")
    assert doc.closed_by == operator and doc.close_date == timezone.localdate()
    assert set(line_states(doc).values()) == {CloseState.CLOSED}
    assert actions_since(before) == [A.DOCUMENT_CLOSED]
    event = AuditEvent.objects.get(seq=before + 1)
    assert event.actor == operator and event.object_id == str(doc.pk)
    assert event.data["from"] == "open" and event.data["to"] == "closed"
    assert event.data["kind"] == "manual"


def test_close_a_closed_document_is_refused(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    document_close(actor=operator, document=doc, reason_code="completed")
    before = audit_head()
    with pytest.raises(InvalidTransition, match="is closed: cannot close"):
        document_close(actor=operator, document=doc, reason_code="completed")
    assert audit_head() == before


def test_close_a_held_document_is_refused(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    document_hold(actor=operator, document=doc, reason="supplier dispute")
    with pytest.raises(InvalidTransition, match="on hold"):
        document_close(actor=operator, document=doc, reason_code="completed")
    assert state(doc) == CloseState.ON_HOLD


def test_reopen_an_open_document_is_refused(org: Org, supervisor: User) -> None:
    doc = ready_document(PO, org.dept_a)
    with pytest.raises(InvalidTransition, match="is open: cannot reopen; allowed from here: close"):
        document_reopen(actor=supervisor, document=doc, reason_code="wrong_close")


def test_archived_document_cannot_be_reopened(org: Org, supervisor: User) -> None:
    doc = ready_document(PO, org.dept_a)
    document_close(actor=supervisor, document=doc, reason_code="completed")
    Document.objects.filter(pk=doc.pk).update(close_state=CloseState.ARCHIVED)
    before = audit_head()
    with pytest.raises(InvalidTransition, match="archived"):
        document_reopen(actor=supervisor, document=doc, reason_code="wrong_close")
    with pytest.raises(InvalidTransition):
        document_close(actor=supervisor, document=doc, reason_code="completed")
    with pytest.raises(InvalidTransition):
        document_hold(actor=supervisor, document=doc, reason="x")
    assert state(doc) == CloseState.ARCHIVED and audit_head() == before


def test_hold_and_release(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    before = audit_head()
    held = document_hold(actor=operator, document=doc, reason="quality check")
    assert (held.close_state, held.hold_reason) == (CloseState.ON_HOLD, "quality check")
    with pytest.raises(InvalidTransition):
        document_hold(actor=operator, document=doc, reason="again")
    released = document_release(actor=operator, document=doc, reason="checked")
    assert (released.close_state, released.hold_reason) == (CloseState.OPEN, "")
    with pytest.raises(InvalidTransition):
        document_release(actor=operator, document=doc, reason="again")
    assert actions_since(before) == [A.DOCUMENT_HELD, A.DOCUMENT_RELEASED]


def test_hold_needs_a_reason(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    with pytest.raises(InvalidInput, match="reason"):
        document_hold(actor=operator, document=doc, reason="  ")


def test_closed_document_cannot_be_held(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    document_close(actor=operator, document=doc, reason_code="completed")
    with pytest.raises(InvalidTransition):
        document_hold(actor=operator, document=doc, reason="x")


def test_line_hold_and_release(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(1, 1), (1, 1)])
    before = audit_head()
    document_hold(actor=operator, document=doc, reason="inspection", line_nos=[2])
    assert line_states(doc) == {1: CloseState.OPEN, 2: CloseState.ON_HOLD}
    with pytest.raises(RuleFailed, match="no_line_on_hold"):
        document_close(actor=operator, document=doc, reason_code="completed")
    with pytest.raises(InvalidInput, match="line 1 is open: cannot release"):
        document_release(actor=operator, document=doc, reason="x", line_nos=[1])
    document_release(actor=operator, document=doc, reason="ok", line_nos=[2])
    assert line_states(doc) == {1: CloseState.OPEN, 2: CloseState.OPEN}
    assert actions_since(before) == [A.LINES_HELD, A.LINES_RELEASED]


# --- line close and roll-up ------------------------------------------------------------------


def test_line_close_rolls_up_to_the_header(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(1, 1), (2, 1), (3, 1)])
    before = audit_head()
    first = document_close(actor=operator, document=doc, reason_code="completed", line_nos=[1])
    assert (first.header_closed, first.lines_closed) == (False, [1])
    assert state(doc) == CloseState.OPEN
    assert line_states(doc) == {1: "closed", 2: "open", 3: "open"}
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[2])
    assert state(doc) == CloseState.OPEN
    last = document_close(actor=operator, document=doc, reason_code="completed", line_nos=[3])
    assert last.header_closed and state(doc) == CloseState.CLOSED
    assert actions_since(before) == [A.LINES_CLOSED, A.LINES_CLOSED, A.DOCUMENT_CLOSED]


def test_whole_close_closes_every_open_line(org: Org, operator: User) -> None:
    doc = ready_document(SO, org.dept_b, [(1, 1), (2, 1), (3, 1)])
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[2])
    result = document_close(actor=operator, document=doc, reason_code="completed")
    assert result.lines_closed == [1, 3] and result.header_closed
    assert set(line_states(doc).values()) == {CloseState.CLOSED}


def test_line_close_of_a_closed_or_unknown_line_is_refused(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(1, 1), (1, 1)])
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[1])
    with pytest.raises(InvalidInput, match="line 1 is closed"):
        document_close(actor=operator, document=doc, reason_code="completed", line_nos=[1])
    with pytest.raises(InvalidInput, match="has no line 9"):
        document_close(actor=operator, document=doc, reason_code="completed", line_nos=[9])


# --- reopen restores exactly what that close changed -------------------------------------------


def test_reopen_restores_exactly_the_last_close(org: Org, operator: User, supervisor: User) -> None:
    item = an_item()
    doc = make_document(PO, org.dept_a, [(10, 2), (20, 3), (30, 4)], item=item)
    post(doc, EventKind.RECEIPT, 1, 10)
    post(doc, EventKind.RECEIPT, 2, 5)
    post(doc, EventKind.RECEIPT, 3, 12)
    on_order = open_commitments_by_item([item.pk])[item.pk].on_order
    assert on_order == 0 + 15 + 18

    # Line 1 closes on its own (fully received, not invoiced yet: releases nothing).
    document_close(
        actor=operator, document=doc, reason_code="completed", remark="billed later", line_nos=[1]
    )
    # The rest close short, releasing 15 (value 45) and 18 (value 72).
    result = document_close(
        actor=operator,
        document=doc,
        reason_code="supplier_cannot_deliver",
        remark="supplier went out of business",
    )
    assert result.header_closed and result.lines_closed == [2, 3]
    assert result.released_value == Decimal(45 + 72)
    released = dict(Line.objects.filter(document=doc).values_list("line_no", "released_qty"))
    assert released == {1: 0, 2: 15, 3: 18}
    doc.refresh_from_db()
    assert doc.released_value == Decimal(117)
    assert item.pk not in open_commitments_by_item([item.pk])

    before = audit_head()
    reopened = document_reopen(actor=supervisor, document=doc, reason_code="late_delivery")
    assert reopened.lines_reopened == [2, 3]
    assert line_states(doc) == {1: "closed", 2: "open", 3: "open"}
    rows = Line.objects.filter(document=doc, line_no__in=[2, 3])
    assert {(r.released_qty, r.released_value, r.close_kind, r.closed_in) for r in rows} == {
        (0, 0, "", None)
    }
    doc.refresh_from_db()
    assert (doc.close_state, doc.close_kind, doc.close_reason, doc.closed_by) == (
        "open",
        "",
        "",
        None,
    )
    assert doc.released_value == 0
    assert open_commitments_by_item([item.pk])[item.pk].on_order == on_order
    assert actions_since(before) == [A.DOCUMENT_REOPENED]
    event = AuditEvent.objects.get(seq=before + 1)
    assert [x["line"] for x in event.data["lines"]] == [2, 3]
    assert event.data["before"]["close_state"] == "closed"

    # Closing again and reopening again still restores exactly.
    document_close(actor=operator, document=doc, reason_code="contract_terminated", remark="x")
    document_reopen(actor=supervisor, document=doc, reason_code="wrong_close")
    assert line_states(doc) == {1: "closed", 2: "open", 3: "open"}
    assert open_commitments_by_item([item.pk])[item.pk].on_order == on_order


def test_close_releases_the_remainder_from_commitments(org: Org, operator: User) -> None:
    item = an_item("ITEM-C")
    po = make_document(PO, org.dept_a, [(100, 1), (50, 1)], item=item, exchange_rate=Decimal(7))
    so = make_document(SO, org.dept_b, [(40, 1)], item=item)
    post(po, EventKind.RECEIPT, 1, 60)
    post(so, EventKind.SHIPMENT, 1, 10)
    c = open_commitments_by_item([item.pk])[item.pk]
    assert (c.on_order, c.reserved) == (40 + 50, 30)
    document_close(
        actor=operator,
        document=po,
        reason_code="short_delivery_accepted",
        remark="rest cancelled",
        line_nos=[1],
    )
    c = open_commitments_by_item([item.pk])[item.pk]
    assert (c.on_order, c.reserved) == (50, 30)
    line = Line.objects.get(document=po, line_no=1)
    assert (line.released_qty, line.released_value, line.released_value_company) == (40, 40, 280)
    document_close(actor=operator, document=so, reason_code="customer_change", remark="cut")
    assert open_commitments_by_item([item.pk])[item.pk].reserved == 0


def test_over_receipt_never_makes_commitments_negative(
    org: Org, operator: User, supervisor: User
) -> None:
    item = an_item("ITEM-O")
    po = make_document(PO, org.dept_a, [(100, 1), (10, 1)], item=item)
    post(po, EventKind.RECEIPT, 1, 130)  # 30% over
    assert open_commitments_by_item([item.pk])[item.pk].on_order == 10
    document_close(
        actor=operator, document=po, reason_code="data_correction", remark="accepted the excess"
    )
    assert Line.objects.get(document=po, line_no=1).released_qty == 0
    assert Line.objects.get(document=po, line_no=2).released_qty == 10
    assert open_commitments_by_item([item.pk]).get(item.pk) is None
    document_reopen(actor=supervisor, document=po, reason_code="wrong_close")
    assert open_commitments_by_item([item.pk])[item.pk].on_order == 10


# --- manual close guards -------------------------------------------------------------------


def test_blocking_failure_refuses_and_names_the_rules(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(1, 1), (1, 1)])
    post(doc, EventKind.RECEIPT, 2, 1, pending=True)
    before = audit_head()
    with pytest.raises(RuleFailed) as refused:
        document_close(actor=operator, document=doc, reason_code="completed", remark="x")
    assert refused.value.details["rules"] == ["events_settled"]
    assert "events_settled" in refused.value.message and doc.number in refused.value.message
    assert state(doc) == CloseState.OPEN and audit_head() == before
    assert set(line_states(doc).values()) == {CloseState.OPEN}


def test_exception_failure_needs_a_remark(org: Org, operator: User) -> None:
    doc = make_document(PO, org.dept_a, [(100, 1)])
    post(doc, EventKind.RECEIPT, 1, 50)
    before = audit_head()
    with pytest.raises(InvalidInput, match="remark") as refused:
        document_close(actor=operator, document=doc, reason_code="supplier_cannot_deliver")
    assert set(refused.value.details["rules"]) >= {"received"}
    assert audit_head() == before and state(doc) == CloseState.OPEN
    result = document_close(
        actor=operator, document=doc, reason_code="supplier_cannot_deliver", remark="gone"
    )
    assert result.header_closed
    doc.refresh_from_db()
    assert doc.close_remark == "gone"
    event = AuditEvent.objects.get(seq=before + 1)
    assert "received" in event.data["exceptions"] and event.data["remark"] == "gone"


def test_unknown_reason_lists_the_valid_codes(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    with pytest.raises(InvalidInput, match="unknown close reason 'because'") as refused:
        document_close(actor=operator, document=doc, reason_code="because")
    assert "supplier_cannot_deliver" in refused.value.message
    assert "auto_rules_met" not in refused.value.details["allowed"]  # system-only
    with pytest.raises(InvalidInput, match="unknown close reason"):
        document_close(actor=operator, document=doc, reason_code="wrong_close")  # a reopen code


def test_close_date_must_be_between_document_date_and_today(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    today = timezone.localdate()
    with pytest.raises(InvalidInput, match="future"):
        document_close(
            actor=operator,
            document=doc,
            reason_code="completed",
            close_date=today + timedelta(days=1),
        )
    with pytest.raises(InvalidInput, match="before the document date"):
        document_close(
            actor=operator,
            document=doc,
            reason_code="completed",
            close_date=doc.document_date - timedelta(days=1),
        )
    document_close(
        actor=operator, document=doc, reason_code="completed", close_date=doc.document_date
    )
    doc.refresh_from_db()
    assert doc.close_date == doc.document_date


def test_warning_is_recorded_but_does_not_stop_a_close(org: Org, operator: User) -> None:
    from tests.factories import PS

    doc = ready_document(PS, org.dept_a, [(1, 100)])
    post(doc, EventKind.COST_POSTING, 1, 0, 50)  # 150 of a 100 budget (+10% allowed)
    before = audit_head()
    document_close(actor=operator, document=doc, reason_code="completed")
    assert AuditEvent.objects.get(seq=before + 1).data["warnings"] == ["cost_within_budget"]


# --- audit sequences ------------------------------------------------------------------------


def test_each_change_writes_exactly_one_audit_event(
    org: Org, operator: User, supervisor: User
) -> None:
    doc = ready_document(PO, org.dept_a, [(1, 1), (1, 1)])
    start = audit_head()
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[1])
    document_close(actor=operator, document=doc, reason_code="completed")
    document_reopen(actor=supervisor, document=doc, reason_code="wrong_close")
    document_hold(actor=operator, document=doc, reason="check")
    document_release(actor=operator, document=doc, reason="ok")
    assert actions_since(start) == [
        A.LINES_CLOSED,
        A.DOCUMENT_CLOSED,
        A.DOCUMENT_REOPENED,
        A.DOCUMENT_HELD,
        A.DOCUMENT_RELEASED,
    ]
    kinds = AuditEvent.objects.filter(seq__gt=start, action=A.DOCUMENT_CLOSED)
    assert [e.data["kind"] for e in kinds] == [CloseKind.MANUAL]


def test_a_refused_change_writes_no_audit_event(org: Org, operator: User) -> None:
    doc = make_document(PO, org.dept_a, [(1, 1)])
    post(doc, EventKind.RECEIPT, 1, 1, pending=True)
    start = audit_head()
    for kwargs in (
        {"reason_code": "completed"},
        {"reason_code": "nope"},
        {"reason_code": "completed", "line_nos": [5]},
    ):
        with pytest.raises((RuleFailed, InvalidInput)):
            document_close(actor=operator, document=doc, **kwargs)  # type: ignore[arg-type]
    assert audit_head() == start
