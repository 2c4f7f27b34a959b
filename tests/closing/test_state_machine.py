"""The sequences of ordinary actions that once drove documents into illegal close states
(issue 11), each refused now with the document, its state, the action and what is allowed."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.approvals.decide import (
    close_request_approve,
    close_request_reject,
    close_request_withdraw,
)
from closeout.approvals.models import AccountingPeriod, CloseRequest, RequestState
from closeout.approvals.submit import close_request_resubmit, reopen_request_submit
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_chain_verify
from closeout.batches.models import BatchAction, BatchItem
from closeout.batches.services import batch_create, batch_preview, batch_start, batch_work
from closeout.closing.services import (
    document_close,
    document_hold,
    document_release,
    document_reopen,
)
from closeout.closing.sweep import sweep_run
from closeout.core.errors import InvalidInput, InvalidTransition
from closeout.documents.models import CloseState, EventKind, EventStatus
from tests.approvals.conftest import closed_po, fresh, make_route, short_po, submit_close
from tests.factories import (
    PO,
    Org,
    actions_since,
    audit_head,
    lenient,
    post,
    ready_document,
)


def test_reopen_of_a_document_waiting_for_close_approval_is_refused(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("all closes")
    document = short_po(org.team_a1)
    request = submit_close(operator, document)
    head = audit_head()
    with pytest.raises(InvalidTransition) as refused:
        document_reopen(actor=supervisor, document=document, reason_code="wrong_close")
    assert "close pending approval: cannot reopen" in refused.value.message
    assert refused.value.details["allowed"] == [
        "approve_close",
        "reject_close",
        "withdraw_close",
    ]
    assert "结案审批中" in refused.value.details["message_zh"]
    assert actions_since(head) == []
    # The request and the document still belong together: withdrawing ends both cleanly.
    close_request_withdraw(actor=operator, request=request)
    assert fresh(document).close_state == CloseState.OPEN
    assert CloseRequest.objects.get(pk=request.pk).state == RequestState.WITHDRAWN
    # ... and the next sweep does not close a short order as "ready".
    lenient(PO)
    sweep_run()
    assert fresh(document).close_state == CloseState.OPEN


def test_reopen_of_a_held_document_is_refused_not_a_release(
    org: Org, operator: User, supervisor: User
) -> None:
    document = ready_document(PO, org.dept_a)
    document_hold(actor=operator, document=document, reason="dispute")
    with pytest.raises(InvalidTransition, match="is on hold: cannot reopen; allowed from here"):
        document_reopen(actor=supervisor, document=document, reason_code="wrong_close")
    assert fresh(document).close_state == CloseState.ON_HOLD


def test_a_document_waiting_for_approval_cannot_be_held(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("all closes")
    document = short_po(org.team_a1)
    submit_close(operator, document)
    with pytest.raises(InvalidTransition, match="close pending approval: cannot hold"):
        document_hold(actor=operator, document=document, reason="dispute")


def test_a_line_request_is_not_approved_while_its_document_is_held(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("all closes")
    document = ready_document(PO, org.team_a1, ((10, 5), (4, 2)))
    request = submit_close(operator, document, line_nos=[1])
    document_hold(actor=operator, document=document, reason="dispute")
    post(document, EventKind.RETURN, 2, 1)
    head = audit_head()
    with pytest.raises(InvalidTransition, match="is on hold: cannot approve the close"):
        close_request_approve(actor=supervisor, request=request)
    assert actions_since(head) == []
    lines = dict(fresh(document).lines.values_list("line_no", "close_state"))
    assert lines == {1: CloseState.CLOSE_PENDING, 2: CloseState.OPEN}
    # Withdrawing it reopens the line but does not release the document, and the event
    # quarantined by the hold stays quarantined until the release.
    close_request_withdraw(actor=operator, request=request)
    document = fresh(document)
    assert document.close_state == CloseState.ON_HOLD
    assert set(document.lines.values_list("close_state", flat=True)) == {CloseState.OPEN}
    assert document.events.filter(status=EventStatus.QUARANTINED).count() == 1
    document_release(actor=operator, document=document)
    assert fresh(document).events.filter(status=EventStatus.QUARANTINED).count() == 0


def test_a_request_whose_document_moved_on_is_refused_for_every_decision(
    org: Org, operator: User, supervisor: User
) -> None:
    """A request left pending by older versions while its document moved on (the state
    machine no longer lets this happen): nothing may execute or end it behind the document's
    back."""
    other = closed_po(org.team_a1, supervisor)
    make_route("all closes")
    document = short_po(org.team_a1)
    request = submit_close(operator, document)
    # Simulate the orphan: point the pending request at a closed document.
    CloseRequest.objects.filter(pk=request.pk).update(document=other)
    head = audit_head()
    for decide in (
        lambda: close_request_approve(actor=supervisor, request=request),
        lambda: close_request_reject(actor=supervisor, request=request, comment="no"),
        lambda: close_request_withdraw(actor=operator, request=request),
    ):
        with pytest.raises(InvalidTransition, match="no longer matches") as refused:
            decide()
        assert "已不相符" in refused.value.details["message_zh"]
    assert actions_since(head) == []
    assert fresh(other).close_state == CloseState.CLOSED
    assert set(other.lines.values_list("close_state", flat=True)) == {CloseState.CLOSED}


def test_resubmit_after_the_document_moved_on_is_refused(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("all closes")
    document = short_po(org.team_a1)
    request = submit_close(operator, document)
    close_request_reject(actor=supervisor, request=request, comment="fix it")
    document_hold(actor=supervisor, document=document, reason="dispute")
    head = audit_head()
    with pytest.raises(InvalidTransition, match="is on hold: cannot request a close"):
        close_request_resubmit(actor=operator, request=request)
    assert actions_since(head) == []
    assert CloseRequest.objects.get(pk=request.pk).state == RequestState.REJECTED


# --- closes dated in a closed accounting period ----------------------------------------------


@pytest.fixture
def closed_period() -> AccountingPeriod:
    today = timezone.localdate()
    return AccountingPeriod.objects.create(
        name="closed", start=today - timedelta(days=40), end=today - timedelta(days=10), closed=True
    )


def test_a_close_dated_in_a_closed_period_is_refused(
    org: Org, operator: User, closed_period: AccountingPeriod
) -> None:
    document = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    day = closed_period.start + timedelta(days=1)
    for line_nos in (None, [1]):
        with pytest.raises(InvalidInput, match="closed accounting period") as refused:
            document_close(
                actor=operator,
                document=document,
                reason_code="completed",
                close_date=day,
                line_nos=line_nos,
            )
        assert refused.value.details["field"] == "close_date"
    with pytest.raises(InvalidInput, match="closed accounting period"):
        submit_close(operator, document, close_date=day)
    # A date in an open period closes.
    document_close(actor=operator, document=document, reason_code="completed")
    assert fresh(document).close_state == CloseState.CLOSED


def test_a_batch_close_dated_in_a_closed_period_refuses_its_documents(
    org: Org, operator: User, closed_period: AccountingPeriod
) -> None:
    document = ready_document(PO, org.dept_a)
    job = batch_create(
        actor=operator,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[document.number],
        reason_code="completed",
        close_date=closed_period.end,
    )
    batch_preview(actor=operator, job=job)
    assert BatchItem.objects.get(job=job).predicted == "refused"
    batch_start(actor=operator, job=job)
    batch_work(job.pk)
    item = BatchItem.objects.get(job=job)
    assert item.outcome == "refused" and "closed accounting period" in item.message
    assert fresh(document).close_state == CloseState.OPEN


def test_every_change_of_a_sequence_has_one_matching_audit_event(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("all closes")
    make_route("reopen", action="reopen")
    document = short_po(org.team_a1)
    head = audit_head()
    request = submit_close(operator, document)
    close_request_approve(actor=supervisor, request=request)
    reopen = reopen_request_submit(
        actor=operator, document=document, reason_code="wrong_close", remark="wrong"
    )
    close_request_reject(actor=supervisor, request=reopen, comment="no")
    state = CloseState.OPEN
    changes = 0
    from closeout.audit.models import AuditEvent

    for event in AuditEvent.objects.filter(
        seq__gt=head, object_type="document", object_id=str(document.pk)
    ).order_by("seq"):
        if "to" in event.data and event.data.get("from") != event.data["to"]:
            assert event.data["from"] == state, event.data
            state = event.data["to"]
            changes += 1
    assert state == fresh(document).close_state == CloseState.CLOSED
    assert changes == 4
    assert AuditAction.CLOSE_REQUEST_ENDED not in actions_since(head)
    assert audit_chain_verify().intact
