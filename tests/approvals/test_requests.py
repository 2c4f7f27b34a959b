"""Close and reopen requests through their approval routes (S9, S12): every decision path,
resubmission, withdrawal, the execution re-check, separation of duties (S14), attachments,
batches, overdue reminders and notifications (S10)."""

import hashlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings as SettingsWrapper

from closeout.access.selectors import roles_including, user_permissions
from closeout.approvals.attachments import attachment_add
from closeout.approvals.decide import (
    approvals_overdue_notify,
    close_request_approve,
    close_request_reject,
    close_request_withdraw,
    close_requests_decide_batch,
)
from closeout.approvals.models import (
    ApprovalDecision,
    ApprovalStep,
    Attachment,
    CloseRequest,
    RequestState,
)
from closeout.approvals.selectors import approvers_for, requests_waiting_for
from closeout.approvals.submit import close_request_resubmit, reopen_request_submit
from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.closing.services import document_close
from closeout.core.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RuleFailed,
)
from closeout.documents.models import CloseState, EventKind, EventStatus
from closeout.documents.services import event_confirm
from closeout.notifications.models import Preference
from tests.approvals.conftest import (
    TWO_STEPS,
    closed_po,
    fresh,
    inbox,
    make_route,
    short_po,
    submit_close,
    two_line_po,
)
from tests.factories import PO, Org, actions_since, audit_head, post, set_policy, user_with_role

# --- one step and two steps ---------------------------------------------------------------


def test_one_step_approval_closes_the_document(org: Org, operator: User, supervisor: User) -> None:
    make_route("主管审批 supervisor")
    document = short_po(org.team_a1)
    request = submit_close(operator, document, remark="supplier stopped")

    assert request.state == RequestState.PENDING
    assert fresh(document).close_state == CloseState.CLOSE_PENDING
    assert request.exception is True
    assert request.open_value == Decimal(60000)
    assert [u.get_username() for u in approvers_for(request)] == ["sup"]
    assert [n.kind for n in inbox(supervisor)] == ["request_submitted"]
    assert inbox(operator) == []

    head = audit_head()
    done = close_request_approve(actor=supervisor, request=request, comment="同意 agreed")

    assert done.state == RequestState.EXECUTED
    assert done.ended_at is not None
    document = fresh(document)
    assert document.close_state == CloseState.CLOSED
    assert document.closed_by_id == supervisor.pk
    assert document.close_reason == "supplier_cannot_deliver"
    assert document.released_value == Decimal(60000)
    [decision] = ApprovalDecision.objects.filter(request=request)
    assert (decision.round, decision.step_order, decision.step_name) == (1, 1, "主管审批")
    assert (decision.decider_id, decision.decision, decision.comment) == (
        supervisor.pk,
        "approve",
        "同意 agreed",
    )
    assert decision.decided_at is not None
    assert actions_since(head) == [AuditAction.APPROVAL_DECIDED, AuditAction.DOCUMENT_CLOSED]
    closed_event = AuditEvent.objects.get(seq__gt=head, action=AuditAction.DOCUMENT_CLOSED)
    assert closed_event.request_id == str(request.pk)
    assert [n.kind for n in inbox(operator)] == ["request_executed"]
    assert audit_chain_verify().intact


def test_two_steps_supervisor_then_finance_over_50000(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    make_route(
        "大额例外 large exception",
        steps=TWO_STEPS,
        condition="exception",
        min_open_value=Decimal(50000),
        priority=10,
    )
    make_route("例外 exception", condition="exception", priority=20)
    small = submit_close(operator, short_po(org.team_a1, received=600))  # open value 40,000
    assert small.route is not None and small.route.name == "例外 exception"
    assert [s["role"] for s in small.steps] == ["supervisor"]

    document = short_po(org.team_a1)  # open value 60,000
    request = submit_close(operator, document)
    assert [s["role"] for s in request.steps] == ["supervisor", "finance"]
    assert [u.get_username() for u in approvers_for(request)] == ["sup"]

    head = audit_head()
    request = close_request_approve(actor=supervisor, request=request, comment="ok 1")
    assert request.state == RequestState.PENDING
    assert request.current_step == 2
    assert fresh(document).close_state == CloseState.CLOSE_PENDING
    assert [u.get_username() for u in approvers_for(request)] == ["fin"]
    assert [n.kind for n in inbox(finance)] == ["request_submitted"]
    assert [n.kind for n in inbox(operator)] == ["request_approved"]

    request = close_request_approve(actor=finance, request=request, comment="ok 2")
    assert request.state == RequestState.EXECUTED
    assert fresh(document).close_state == CloseState.CLOSED
    decisions = list(
        ApprovalDecision.objects.filter(request=request).values_list(
            "step_order", "step_name", "decider__username", "decision", "comment"
        )
    )
    assert decisions == [
        (1, "主管审批", "sup", "approve", "ok 1"),
        (2, "财务审批", "fin", "approve", "ok 2"),
    ]
    assert actions_since(head) == [
        AuditAction.APPROVAL_DECIDED,
        AuditAction.APPROVAL_DECIDED,
        AuditAction.DOCUMENT_CLOSED,
    ]
    assert [n.kind for n in inbox(operator)] == ["request_approved", "request_executed"]


def test_steps_numbered_with_gaps_follow_their_order(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    route = make_route("gaps", steps=TWO_STEPS)
    ApprovalStep.objects.filter(route=route, order=2).update(order=20)
    ApprovalStep.objects.filter(route=route, order=1).update(order=10)
    request = submit_close(operator, short_po(org.team_a1))
    assert request.current_step == 10
    request = close_request_approve(actor=supervisor, request=request)
    assert request.current_step == 20
    with pytest.raises(PermissionDenied, match="needs the role 'finance'"):
        close_request_approve(
            actor=user_with_role("sup9", "supervisor", org.company), request=request
        )
    assert close_request_approve(actor=finance, request=request).state == RequestState.EXECUTED


# --- reject, resubmit, withdraw -------------------------------------------------------------


def test_reject_needs_a_comment_and_sends_the_document_back(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    make_route("two", steps=TWO_STEPS)
    document = short_po(org.team_a1)
    request = submit_close(operator, document)
    with pytest.raises(InvalidInput, match="comment"):
        close_request_reject(actor=supervisor, request=request, comment="  ")
    assert ApprovalDecision.objects.count() == 0
    assert fresh(document).close_state == CloseState.CLOSE_PENDING

    request = close_request_approve(actor=supervisor, request=request)
    head = audit_head()
    request = close_request_reject(actor=finance, request=request, comment="补充供应商函件")

    assert request.state == RequestState.REJECTED
    assert fresh(document).close_state == CloseState.OPEN
    assert list(
        ApprovalDecision.objects.filter(request=request).values_list("step_order", "decision")
    ) == [(1, "approve"), (2, "reject")]
    assert actions_since(head) == [AuditAction.CLOSE_REQUEST_ENDED]
    [rejected] = inbox(operator, "request_rejected")
    assert "补充供应商函件" in rejected.body
    with pytest.raises(InvalidTransition, match="rejected"):
        close_request_approve(actor=supervisor, request=request)


def test_resubmit_after_rejection_starts_a_new_round(
    org: Org, operator: User, supervisor: User, sup2: User
) -> None:
    make_route("lines", steps=(("supervisor", "主管"),))
    document = short_po(org.team_a1)
    request = submit_close(operator, document, remark="first try")
    request = close_request_reject(actor=supervisor, request=request, comment="say why")

    with pytest.raises(PermissionDenied, match="only the requester"):
        close_request_resubmit(actor=supervisor, request=request, remark="x")
    request = close_request_resubmit(
        actor=operator, request=request, remark="supplier letter of 3 May attached"
    )
    assert request.state == RequestState.PENDING
    assert (request.round, request.current_step) == (2, 1)
    assert request.remark == "supplier letter of 3 May attached"
    assert fresh(document).close_state == CloseState.CLOSE_PENDING
    with pytest.raises(InvalidTransition, match="not rejected"):
        close_request_resubmit(actor=operator, request=request, remark="again")

    request = close_request_approve(actor=sup2, request=request, comment="fine now")
    assert request.state == RequestState.EXECUTED
    assert list(
        ApprovalDecision.objects.filter(request=request).values_list(
            "round", "decider__username", "decision"
        )
    ) == [(1, "sup", "reject"), (2, "sup2", "approve")]
    assert fresh(document).close_remark == "supplier letter of 3 May attached"


def test_resubmit_with_other_lines(org: Org, operator: User, supervisor: User) -> None:
    make_route("all closes")
    document = two_line_po(org.team_a1)
    request = submit_close(operator, document, line_nos=[1, 2])
    request = close_request_reject(actor=supervisor, request=request, comment="only line 2")
    assert set(fresh(document).lines.values_list("close_state", flat=True)) == {CloseState.OPEN}

    request = close_request_resubmit(actor=operator, request=request, line_nos=[2])
    states = dict(fresh(document).lines.values_list("line_no", "close_state"))
    assert states == {1: CloseState.OPEN, 2: CloseState.CLOSE_PENDING}
    close_request_approve(actor=supervisor, request=request)
    states = dict(fresh(document).lines.values_list("line_no", "close_state"))
    assert states == {1: CloseState.OPEN, 2: CloseState.CLOSED}
    assert fresh(document).close_state == CloseState.OPEN


def test_withdraw_by_requester_only(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    make_route("two", steps=TWO_STEPS)
    document = short_po(org.team_a1)
    request = submit_close(operator, document)
    request = close_request_approve(actor=supervisor, request=request)
    for other in (supervisor, finance):
        with pytest.raises(PermissionDenied, match="only the requester can withdraw"):
            close_request_withdraw(actor=other, request=request)
    head = audit_head()
    request = close_request_withdraw(actor=operator, request=request, reason="not needed")
    assert request.state == RequestState.WITHDRAWN
    assert fresh(document).close_state == CloseState.OPEN
    assert actions_since(head) == [AuditAction.CLOSE_REQUEST_ENDED]
    assert [n.kind for n in inbox(supervisor)][-1] == "request_withdrawn"
    with pytest.raises(InvalidTransition, match="not pending"):
        close_request_withdraw(actor=operator, request=request)
    with pytest.raises(InvalidTransition):
        close_request_approve(actor=finance, request=request)


# --- line close, reopen, route-less, direct close refusals -----------------------------------


def test_line_close_request_keeps_the_document_open(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("all closes")
    document = two_line_po(org.team_a1)
    request = submit_close(operator, document, line_nos=[1])
    document = fresh(document)
    assert document.close_state == CloseState.OPEN
    assert dict(document.lines.values_list("line_no", "close_state")) == {
        1: CloseState.CLOSE_PENDING,
        2: CloseState.OPEN,
    }
    head = audit_head()
    close_request_approve(actor=supervisor, request=request)
    document = fresh(document)
    assert document.close_state == CloseState.OPEN
    assert dict(document.lines.values_list("line_no", "close_state")) == {
        1: CloseState.CLOSED,
        2: CloseState.OPEN,
    }
    assert actions_since(head) == [AuditAction.APPROVAL_DECIDED, AuditAction.LINES_CLOSED]


def test_line_close_request_withdrawn_reopens_the_line(org: Org, operator: User) -> None:
    make_route("all closes")
    document = two_line_po(org.team_a1)
    request = submit_close(operator, document, line_nos=[2])
    close_request_withdraw(actor=operator, request=request)
    assert set(fresh(document).lines.values_list("close_state", flat=True)) == {CloseState.OPEN}


def test_reopen_request_approved_by_finance_restores_exactly(
    org: Org, operator: User, finance: User
) -> None:
    make_route("反结案 reopen", action="reopen", steps=(("finance", "财务"),))
    document = two_line_po(org.team_a1)
    document_close(actor=operator, document=document, reason_code="completed", line_nos=[1])
    document_close(actor=operator, document=document, reason_code="completed")
    assert fresh(document).close_state == CloseState.CLOSED

    with pytest.raises(InvalidInput, match="remark"):
        reopen_request_submit(actor=operator, document=document, reason_code="wrong_close")
    request = reopen_request_submit(
        actor=operator, document=document, reason_code="wrong_close", remark="line 2 not done"
    )
    assert fresh(document).close_state == CloseState.REOPEN_PENDING
    assert [u.get_username() for u in approvers_for(request)] == ["fin"]
    head = audit_head()
    request = close_request_approve(actor=finance, request=request, comment="ok")
    assert request.state == RequestState.EXECUTED
    document = fresh(document)
    assert document.close_state == CloseState.OPEN
    # Line 1 was closed by its own earlier close: it stays closed.
    assert dict(document.lines.values_list("line_no", "close_state")) == {
        1: CloseState.CLOSED,
        2: CloseState.OPEN,
    }
    assert actions_since(head) == [AuditAction.APPROVAL_DECIDED, AuditAction.DOCUMENT_REOPENED]


def test_reopen_request_rejected_leaves_the_document_closed(
    org: Org, operator: User, finance: User
) -> None:
    make_route("reopen", action="reopen", steps=(("finance", "财务"),))
    document = closed_po(org.team_a1, operator)
    request = reopen_request_submit(
        actor=operator, document=document, reason_code="late_delivery", remark="goods came"
    )
    close_request_reject(actor=finance, request=request, comment="post a new order instead")
    assert fresh(document).close_state == CloseState.CLOSED


def test_reopen_request_without_a_route_is_refused(org: Org, operator: User) -> None:
    document = closed_po(org.team_a1, operator)
    with pytest.raises(InvalidTransition, match="no reopen approval route"):
        reopen_request_submit(
            actor=operator, document=document, reason_code="wrong_close", remark="x"
        )
    assert fresh(document).close_state == CloseState.CLOSED


def test_routeless_close_request_executes_at_once(org: Org, operator: User) -> None:
    make_route("reopen only", action="reopen", steps=(("finance", "财务"),))
    document = short_po(org.team_a1)
    request = submit_close(operator, document)
    assert request.state == RequestState.EXECUTED
    assert request.steps == []
    assert fresh(document).close_state == CloseState.CLOSED
    assert not ApprovalDecision.objects.filter(request=request).exists()


def test_policy_direct_close_needs_approval(org: Org, operator: User, supervisor: User) -> None:
    set_policy(PO, direct_close_needs_approval=True)
    document = short_po(org.team_a1)
    with pytest.raises(InvalidTransition, match="policy requires approval"):
        document_close(
            actor=operator, document=document, reason_code="supplier_cannot_deliver", remark="x"
        )
    with pytest.raises(InvalidTransition, match="no approval route matches"):
        submit_close(operator, document)
    assert fresh(document).close_state == CloseState.OPEN
    make_route("any close")
    request = submit_close(operator, document)
    assert request.state == RequestState.PENDING


def test_direct_close_refused_when_a_route_matches(org: Org, operator: User) -> None:
    make_route("例外结案审批 exception close", condition="exception")
    document = short_po(org.team_a1)
    with pytest.raises(InvalidTransition, match="route '例外结案审批 exception close'"):
        document_close(
            actor=operator, document=document, reason_code="supplier_cannot_deliver", remark="x"
        )
    assert fresh(document).close_state == CloseState.OPEN
    # A document without exceptions matches no route: it still closes directly.
    ready = two_line_po(org.team_a1)
    document_close(actor=operator, document=ready, reason_code="completed")
    assert fresh(ready).close_state == CloseState.CLOSED


# --- execution re-check -----------------------------------------------------------------------


def test_last_approval_rechecks_blocking_rules(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    make_route("two", steps=TWO_STEPS)
    document = short_po(org.team_a1)
    request = submit_close(operator, document)
    request = close_request_approve(actor=supervisor, request=request)
    # A receipt arrives but waits for confirmation: events_settled (blocking) now fails.
    late = post(document, EventKind.RECEIPT, 1, 10, pending=True)

    with pytest.raises(RuleFailed, match="events_settled"):
        close_request_approve(actor=finance, request=request, comment="ok")

    request.refresh_from_db()
    assert request.state == RequestState.PENDING
    assert request.current_step == 2
    assert "events_settled" in request.last_error
    assert ApprovalDecision.objects.filter(request=request).count() == 1
    assert fresh(document).close_state == CloseState.CLOSE_PENDING
    refused = AuditEvent.objects.filter(
        action=AuditAction.EXECUTION_REFUSED, object_id=str(request.pk)
    )
    assert refused.count() == 1
    assert "events_settled" in refused.get().data["rules"]
    assert not AuditEvent.objects.filter(
        action=AuditAction.DOCUMENT_CLOSED, object_id=str(document.pk)
    ).exists()
    [message] = inbox(operator, "execution_refused")
    assert "events_settled" in message.body

    # Once the receipt is confirmed the same approval goes through.
    event_confirm(actor=None, event_id=late.event.pk)
    assert late.event.__class__.objects.get(pk=late.event.pk).status == EventStatus.APPLIED
    request = close_request_approve(actor=finance, request=request)
    assert request.state == RequestState.EXECUTED
    assert request.last_error == ""
    assert fresh(document).close_state == CloseState.CLOSED
    assert audit_chain_verify().intact


# --- separation of duties ---------------------------------------------------------------------


def test_nobody_decides_their_own_request(org: Org, supervisor: User, sup2: User) -> None:
    make_route("sup")
    request = submit_close(supervisor, short_po(org.team_a1))  # supervisor includes operator
    assert [u.get_username() for u in approvers_for(request)] == ["sup2"]
    assert requests_waiting_for(supervisor) == []
    assert requests_waiting_for(sup2) == [request]
    with pytest.raises(PermissionDenied, match="separation of duties") as refused:
        close_request_approve(actor=supervisor, request=request)
    assert refused.value.details["rule"] == "no_self_approval"
    with pytest.raises(PermissionDenied, match="nobody decides their own request"):
        close_request_reject(actor=supervisor, request=request, comment="no")
    assert ApprovalDecision.objects.count() == 0
    close_request_approve(actor=sup2, request=request)


def test_one_person_decides_one_step_even_with_both_roles(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    both = user_with_role("both", "supervisor", org.company)
    user_with_role_grant(both, "finance", org)
    make_route("two", steps=TWO_STEPS)
    request = submit_close(operator, short_po(org.team_a1))
    request = close_request_approve(actor=both, request=request)
    assert both not in approvers_for(request)
    with pytest.raises(PermissionDenied, match="one person decides one step") as refused:
        close_request_approve(actor=both, request=request)
    assert refused.value.details["rule"] == "one_step_per_person"
    with pytest.raises(PermissionDenied, match="one person decides one step"):
        close_request_reject(actor=both, request=request, comment="no")
    assert close_request_approve(actor=finance, request=request).state == RequestState.EXECUTED


def test_deciders_cannot_act_on_the_requesters_side(
    org: Org, operator: User, supervisor: User, sup2: User
) -> None:
    make_route("two sups", steps=(("supervisor", "一"), ("supervisor", "二")))
    request = submit_close(operator, short_po(org.team_a1))
    request = close_request_approve(actor=supervisor, request=request)
    with pytest.raises(PermissionDenied, match="only the requester"):
        close_request_withdraw(actor=supervisor, request=request)
    with pytest.raises(PermissionDenied, match="only the requester"):
        attachment_add(actor=supervisor, request=request, name="a.txt", content=b"x")
    assert close_request_approve(actor=sup2, request=request).state == RequestState.EXECUTED


def test_step_role_and_scope_are_checked(org: Org, operator: User, finance: User) -> None:
    make_route("sup")
    request = submit_close(operator, short_po(org.team_a1))
    # finance holds close.approve, but the step needs the supervisor role.
    with pytest.raises(PermissionDenied, match="needs the role 'supervisor'"):
        close_request_approve(actor=finance, request=request)
    elsewhere = user_with_role("sup-b", "supervisor", org.dept_b)
    with pytest.raises(PermissionDenied, match=r"close\.approve"):
        close_request_approve(actor=elsewhere, request=request)
    nobody = user_with_role("nobody", None)
    with pytest.raises(PermissionDenied):
        close_request_approve(actor=nobody, request=request)
    assert ApprovalDecision.objects.count() == 0


def test_role_inheritance_supervisor_includes_operator(
    org: Org, operator: User, supervisor: User
) -> None:
    assert roles_including("operator") == {"operator", "supervisor"}
    assert roles_including("finance") == {"finance"}
    assert {"close.request", "close.direct", "document.hold"} <= user_permissions(supervisor)
    make_route("operator step", steps=(("operator", "业务复核"),))
    requester = user_with_role("buyer2", "operator", org.company)
    request = submit_close(requester, short_po(org.team_a1))
    # Holding the operator role (op) is not enough: approving needs close.approve too.
    assert [u.get_username() for u in approvers_for(request)] == ["op", "sup"]
    with pytest.raises(PermissionDenied, match=r"close\.approve"):
        close_request_approve(actor=operator, request=request)
    assert close_request_approve(actor=supervisor, request=request).state == RequestState.EXECUTED


def user_with_role_grant(user: User, role: str, org: Org) -> None:
    from closeout.access.models import Role
    from closeout.access.services import grant_create

    grant_create(
        actor=None, user=user, role=Role.objects.get(code=role), org_unit=org.company, reason="t"
    )


# --- attachments ------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_attachments_are_stored_with_size_and_hash(
    org: Org, operator: User, settings: SettingsWrapper, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    make_route("sup")
    files = [("供应商函件.pdf", PDF), ("photo.png", PNG), ("list.csv", "行,数量\n1,4\n".encode())]
    request = submit_close(operator, short_po(org.team_a1), attachments=files)
    stored = list(Attachment.objects.filter(request=request).order_by("id"))
    assert [(a.original_name, a.content_type, a.size) for a in stored] == [
        ("供应商函件.pdf", "application/pdf", len(PDF)),
        ("photo.png", "image/png", len(PNG)),
        ("list.csv", "text/csv", len(files[2][1])),
    ]
    for attachment, (_name, content) in zip(stored, files, strict=True):
        assert attachment.sha256 == hashlib.sha256(content).hexdigest()
        path = Path(attachment.file.path)
        assert path.is_relative_to(tmp_path)
        assert path.read_bytes() == content
    more = attachment_add(actor=operator, request=request, name="more.txt", content=b"note")
    assert more.size == 4
    assert AuditEvent.objects.filter(action=AuditAction.ATTACHMENT_ADDED).count() == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("tool.exe", b"MZ\x90\x00", "tool.exe': type .exe is not allowed"),
        ("fake.pdf", b"<html>not a pdf</html>", "fake.pdf' is not really a .pdf"),
        ("empty.pdf", b"", "empty.pdf' is empty"),
        ("big.pdf", PDF + b"x" * 100, "big.pdf' is 133 bytes; the limit is 64"),
        ("binary.txt", b"a\x00b", "binary.txt' is not a text file"),
    ],
)
def test_bad_attachments_are_refused_and_nothing_is_stored(
    org: Org,
    operator: User,
    settings: SettingsWrapper,
    tmp_path: Path,
    name: str,
    content: bytes,
    message: str,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.CLOSEOUT_ATTACHMENT_MAX_BYTES = 64
    make_route("sup")
    document = short_po(org.team_a1)
    with pytest.raises(InvalidInput, match=message.replace(".", r"\.")):
        submit_close(operator, document, attachments=[("good.pdf", PDF), (name, content)])
    assert CloseRequest.objects.count() == 0
    assert Attachment.objects.count() == 0
    assert _stored_files(tmp_path) == []
    assert fresh(document).close_state == CloseState.OPEN

    request = submit_close(operator, document)
    with pytest.raises(InvalidInput, match=name.replace(".", r"\.")):
        attachment_add(actor=operator, request=request, name=name, content=content)
    assert Attachment.objects.count() == 0
    assert _stored_files(tmp_path) == []


# --- batches ----------------------------------------------------------------------------------


def test_batch_approve_gives_one_result_per_request(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("sup")
    first = submit_close(operator, short_po(org.team_a1))
    own = submit_close(supervisor, short_po(org.team_a1))
    third = submit_close(operator, short_po(org.team_a1))
    results = close_requests_decide_batch(
        actor=supervisor,
        request_ids=[first.pk, own.pk, 999999, third.pk],
        decision="approve",
        comment="batch",
    )
    assert [(r.request_id, r.ok, r.state) for r in results] == [
        (first.pk, True, RequestState.EXECUTED),
        (own.pk, False, RequestState.PENDING),
        (999999, False, ""),
        (third.pk, True, RequestState.EXECUTED),
    ]
    assert "separation of duties" in results[1].message
    assert "no close request #999999" in results[2].message
    assert first.document.__class__.objects.get(pk=third.document_id).close_state == "closed"


def test_batch_reject_needs_a_comment(org: Org, operator: User, supervisor: User) -> None:
    make_route("sup")
    requests = [submit_close(operator, short_po(org.team_a1)) for _ in range(2)]
    ids = [r.pk for r in requests]
    with pytest.raises(InvalidInput, match="comment"):
        close_requests_decide_batch(actor=supervisor, request_ids=ids, decision="reject")
    with pytest.raises(InvalidInput, match="unknown decision"):
        close_requests_decide_batch(actor=supervisor, request_ids=ids, decision="maybe")
    results = close_requests_decide_batch(
        actor=supervisor, request_ids=ids, decision="reject", comment="redo"
    )
    assert [(r.ok, r.state) for r in results] == [(True, RequestState.REJECTED)] * 2
    assert set(
        CloseRequest.objects.filter(pk__in=ids).values_list("document__close_state", flat=True)
    ) == {CloseState.OPEN}


# --- overdue reminders and notifications -----------------------------------------------------


def test_overdue_reminder_once_per_step(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    make_route("two", steps=TWO_STEPS, sla_hours=24)
    request = submit_close(operator, short_po(org.team_a1))
    started = request.step_started_at
    assert approvals_overdue_notify(now=started + timedelta(hours=24, seconds=-1)) == 0
    assert approvals_overdue_notify(now=started + timedelta(hours=24)) == 1
    assert approvals_overdue_notify(now=started + timedelta(hours=30)) == 0
    assert [n.kind for n in inbox(supervisor)] == ["request_submitted", "approval_overdue"]
    [reminder] = inbox(operator, "approval_overdue")
    assert "24" in reminder.body

    request = close_request_approve(actor=supervisor, request=request)
    step2 = request.step_started_at
    assert approvals_overdue_notify(now=step2 + timedelta(hours=23)) == 0
    assert approvals_overdue_notify(now=step2 + timedelta(hours=25)) == 1
    assert len(inbox(finance, "approval_overdue")) == 1
    assert len(inbox(supervisor, "approval_overdue")) == 1


def test_messages_in_the_recipients_language(
    org: Org, operator: User, supervisor: User, sup2: User
) -> None:
    Preference.objects.create(user=supervisor, language="en")
    make_route("sup")
    request = submit_close(operator, short_po(org.team_a1))
    [english] = inbox(supervisor, "request_submitted")
    [chinese] = inbox(sup2, "request_submitted")
    assert english.title.startswith("Approval needed")
    assert chinese.title.startswith("待审批")
    assert english.link == chinese.link == f"/requests/{request.pk}/"
    close_request_reject(actor=supervisor, request=request, comment="why?")
    [rejected] = inbox(operator, "request_rejected")
    assert rejected.title.startswith("已驳回")


def test_unknown_request_is_not_found(org: Org, supervisor: User) -> None:
    with pytest.raises(NotFound, match="no close request #4242"):
        close_request_approve(actor=supervisor, request=CloseRequest(pk=4242))
    assert ApprovalDecision.objects.count() == 0


def test_stale_request_objects_are_re_read(
    org: Org, operator: User, supervisor: User, sup2: User
) -> None:
    make_route("sup")
    request = submit_close(operator, short_po(org.team_a1))
    stale = CloseRequest.objects.get(pk=request.pk)
    close_request_approve(actor=supervisor, request=request)
    assert stale.state == RequestState.PENDING  # the in-memory copy is out of date
    with pytest.raises(InvalidTransition, match="is executed"):
        close_request_approve(actor=sup2, request=stale)
    with pytest.raises(InvalidTransition, match="is executed"):
        close_request_reject(actor=sup2, request=stale, comment="late")
    with pytest.raises(InvalidTransition, match="executed, not pending"):
        close_request_withdraw(actor=operator, request=stale)
    assert ApprovalDecision.objects.filter(request=request).count() == 1
    assert fresh(stale.document).close_state == CloseState.CLOSED
