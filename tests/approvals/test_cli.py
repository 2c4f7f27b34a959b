"""The approval and grant commands: `closeout request`, `approve`, `reject`, `withdraw`,
`resubmit`, `requests`, `grant`, `revoke`, `grants`. Called in-process with call_command; each
refusal is one line (CommandError without a newline) naming what is wrong."""

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from pytest_django.fixtures import Settings

from closeout.access.models import Grant
from closeout.approvals.models import ApprovalDecision, Attachment, CloseRequest, RequestState
from closeout.documents.models import CloseState, Document
from tests.approvals.conftest import TWO_STEPS, closed_po, fresh, make_route, short_po, two_line_po
from tests.factories import Org, user_with_role


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    message = str(error.value)
    assert "\n" not in message, message
    assert "Traceback" not in message
    return message


def the_request() -> CloseRequest:
    return CloseRequest.objects.select_related("document").get()


# --- request, approve, reject, withdraw, resubmit --------------------------------------------


def test_request_close_and_approve_in_two_steps(
    org: Org, operator: User, supervisor: User, finance: User, settings: Settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(b"%PDF-1.4 supplier letter")
    make_route("大额 large", steps=TWO_STEPS)
    document = short_po(org.team_a1)

    out = run(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--remark",
        "supplier stopped",
        "--attach",
        str(letter),
        "--as",
        "op",
    )
    request = the_request()
    assert out.splitlines()[0] == (
        f"request #{request.pk} pending: close {document.label}, round 1"
    )
    assert "step 1 of 2 '主管审批' (role supervisor); approvers: sup" in out
    assert "attachments: 1" in out
    assert Attachment.objects.get().original_name == "letter.pdf"

    out = run("approve", str(request.pk), "--comment", "ok", "--as", "sup")
    assert out.strip() == (
        f"request #{request.pk} approved: now waiting at step 2 '财务审批' (role finance); "
        f"{document.label} is close_pending"
    )
    out = run("approve", f"#{request.pk}", "--as", "fin")
    assert out.strip() == f"request #{request.pk} executed: {document.label} is closed"
    assert fresh(document).close_state == CloseState.CLOSED


def test_request_close_without_route_executes_at_once(org: Org, operator: User) -> None:
    document = two_line_po(org.team_a1)
    out = run(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "completed",
        "--lines",
        "2",
        "--as",
        "op",
    )
    assert "executed: close" in out and "lines 2 (no approval route applies)" in out
    assert dict(fresh(document).lines.values_list("line_no", "close_state")) == {
        1: CloseState.OPEN,
        2: CloseState.CLOSED,
    }


def test_request_reopen(org: Org, operator: User, finance: User) -> None:
    make_route("reopen", action="reopen", steps=(("finance", "财务"),))
    document = closed_po(org.team_a1, operator)
    assert "needs a remark" in refused(
        "request",
        "reopen",
        "purchase_order",
        document.number,
        "--reason",
        "wrong_close",
        "--as",
        "op",
    )
    assert "--lines is for close requests" in refused(
        "request",
        "reopen",
        "purchase_order",
        document.number,
        "--reason",
        "wrong_close",
        "--remark",
        "x",
        "--lines",
        "1",
        "--as",
        "op",
    )
    out = run(
        "request",
        "reopen",
        "purchase_order",
        document.number,
        "--reason",
        "wrong_close",
        "--remark",
        "closed by mistake",
        "--as",
        "op",
    )
    assert "pending: reopen" in out and "approvers: fin" in out
    run("approve", str(the_request().pk), "--as", "fin")
    assert fresh(document).close_state == CloseState.OPEN


def test_reject_needs_a_comment_then_resubmit(org: Org, operator: User, supervisor: User) -> None:
    make_route("sup")
    document = two_line_po(org.team_a1)
    run(
        "request", "close", "purchase_order", document.number, "--reason", "completed", "--as", "op"
    )
    request_id = str(the_request().pk)

    message = refused("reject", request_id, "--as", "sup")
    assert "--comment" in message
    message = refused("reject", request_id, "--comment", "   ", "--as", "sup")
    assert message == "a rejection needs a comment saying what to change"

    out = run("reject", request_id, "--comment", "close line 1 only", "--as", "sup")
    assert out.strip() == f"request #{request_id} rejected: {document.label} is open"

    assert "only the requester can resubmit" in refused(
        "resubmit", request_id, "--remark", "x", "--as", "sup"
    )
    out = run("resubmit", request_id, "--lines", "1", "--remark", "line 1 only", "--as", "op")
    assert f"request #{request_id} pending:" in out and "lines 1, round 2" in out
    assert dict(fresh(document).lines.values_list("line_no", "close_state")) == {
        1: CloseState.CLOSE_PENDING,
        2: CloseState.OPEN,
    }


def test_withdraw(org: Org, operator: User, supervisor: User) -> None:
    make_route("sup")
    document = short_po(org.team_a1)
    run(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--remark",
        "x",
        "--as",
        "op",
    )
    request_id = str(the_request().pk)
    assert "only the requester can withdraw" in refused("withdraw", request_id, "--as", "sup")
    out = run("withdraw", request_id, "--reason", "wrong document", "--as", "op")
    assert out.strip() == f"request #{request_id} withdrawn: {document.label} is open"
    assert "is withdrawn, not pending" in refused("withdraw", request_id, "--as", "op")


def test_one_line_errors(org: Org, operator: User, supervisor: User) -> None:
    make_route("sup")
    document = short_po(org.team_a1)
    assert refused("approve", "4242", "--as", "sup") == "no close request #4242"
    assert refused("approve", "abc", "--as", "sup") == "request id 'abc' is not a number such as 12"
    assert refused("withdraw", "0", "--as", "op") == "request id '0' is not a number such as 12"
    assert refused("approve", "1", "--as", "ghost") == "no active user 'ghost'"
    assert "--as" in refused("approve", "1")
    assert "no purchase_order numbered 'NOPE'" in refused(
        "request", "close", "purchase_order", "NOPE", "--reason", "completed", "--as", "op"
    )
    assert "invalid choice: 'cancel'" in refused(
        "request", "cancel", "purchase_order", document.number, "--reason", "x", "--as", "op"
    )
    assert "--attach: no file '/nonexistent/a.pdf'" in refused(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--remark",
        "x",
        "--attach",
        "/nonexistent/a.pdf",
        "--as",
        "op",
    )
    assert "unknown close reason 'whatever'" in refused(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "whatever",
        "--remark",
        "x",
        "--as",
        "op",
    )
    assert "a remark explaining the exception is required" in refused(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--as",
        "op",
    )
    assert CloseRequest.objects.count() == 0


def test_separation_of_duties_refusal(org: Org, supervisor: User, sup2: User) -> None:
    make_route("sup")
    document = short_po(org.team_a1)
    run(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--remark",
        "x",
        "--as",
        "sup",
    )
    request_id = the_request().pk
    message = refused("approve", str(request_id), "--as", "sup")
    assert message == (f"separation of duties: nobody decides their own request (#{request_id})")
    assert ApprovalDecision.objects.count() == 0
    run("approve", str(request_id), "--as", "sup2")
    assert fresh(document).close_state == CloseState.CLOSED


def test_batch_approve_prints_one_line_per_request(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("sup")
    documents = [short_po(org.team_a1) for _ in range(2)]
    for document in documents:
        run(
            "request",
            "close",
            "purchase_order",
            document.number,
            "--reason",
            "supplier_cannot_deliver",
            "--remark",
            "x",
            "--as",
            "op",
        )
    first, second = sorted(CloseRequest.objects.values_list("pk", flat=True))
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command(
            "approve",
            str(first),
            f"{second},9999",
            "--comment",
            "batch",
            "--as",
            "sup",
            stdout=out,
        )
    assert str(error.value) == "1 of 3 requests failed"
    assert out.getvalue().splitlines() == [
        f"#{first}  ok      executed",
        f"#{second}  ok      executed",
        "#9999  failed  no close request #9999",
        "2 approved, 1 failed",
    ]
    assert set(Document.objects.values_list("close_state", flat=True)) == {CloseState.CLOSED}


def test_batch_reject(org: Org, operator: User, supervisor: User) -> None:
    make_route("sup")
    for _ in range(2):
        run(
            "request",
            "close",
            "purchase_order",
            short_po(org.team_a1).number,
            "--reason",
            "supplier_cannot_deliver",
            "--remark",
            "x",
            "--as",
            "op",
        )
    ids = [str(pk) for pk in CloseRequest.objects.order_by("pk").values_list("pk", flat=True)]
    out = run("reject", *ids, "--comment", "attach the letter", "--as", "sup")
    assert out.splitlines()[-1] == "2 rejected, 0 failed"
    assert set(CloseRequest.objects.values_list("state", flat=True)) == {RequestState.REJECTED}


# --- listing ------------------------------------------------------------------------------


def test_requests_list_and_show(org: Org, operator: User, supervisor: User, finance: User) -> None:
    make_route("two", steps=TWO_STEPS)
    document = short_po(org.team_a1)
    run(
        "request",
        "close",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--remark",
        "supplier stopped",
        "--as",
        "op",
    )
    request = the_request()

    listing = run("requests", "--state", "pending")
    assert f"#{request.pk}" in listing and "主管审批" in listing
    assert listing.splitlines()[-1] == "1 request(s)"
    assert run("requests", "--waiting-for", "sup").splitlines()[-1] == "1 request(s)"
    assert run("requests", "--waiting-for", "fin").splitlines()[-1] == "0 request(s)"
    assert run("requests", "--mine", "op").splitlines()[-1] == "1 request(s)"
    assert run("requests", "--state", "executed").splitlines()[-1] == "0 request(s)"
    assert refused("requests", "--mine", "ghost") == "no user 'ghost'"
    assert "invalid choice" in refused("requests", "--state", "lost")

    run("approve", str(request.pk), "--comment", "同意", "--as", "sup")
    shown = run("requests", "--show", str(request.pk))
    assert shown.splitlines()[0] == f"request #{request.pk}: close {document.label}"
    assert re.search(r"approvers now +fin\n", shown)
    assert "同意" in shown  # the decision
    checklist = shown[shown.index("checklist at submission:") :]
    assert "received" in checklist and "FAIL" in checklist
    assert "events_settled" in checklist
    assert refused("requests", "--show", "777") == "no close request #777"


# --- grants --------------------------------------------------------------------------------


def test_grant_revoke_and_list(org: Org) -> None:
    user_with_role("adm", "admin", org.company)
    user_with_role("newbie", None)
    until = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    out = run(
        "grant",
        "newbie",
        "operator",
        "D-A",
        "--types",
        "purchase_order,payable",
        "--until",
        until,
        "--reason",
        "cover for leave",
        "--as",
        "adm",
    )
    grant = Grant.objects.get(user__username="newbie")
    assert out.startswith(f"grant #{grant.pk}: newbie is operator in D-A")
    assert grant.doc_types == ["purchase_order", "payable"]
    assert grant.valid_until is not None and grant.granted_by is not None

    listing = run("grants", "newbie")
    assert f"#{grant.pk}" in listing and "purchase_order,payable" in listing
    assert listing.splitlines()[-1] == "1 grant(s) in force"
    assert run("grants").splitlines()[-1] == "2 grant(s) in force"  # adm's and newbie's

    out = run("revoke", str(grant.pk), "--reason", "back", "--as", "adm")
    assert f"grant #{grant.pk} revoked" in out
    assert run("grants", "newbie").splitlines()[-1] == "0 grant(s) in force"
    assert refused("revoke", str(grant.pk), "--reason", "again", "--as", "adm") == (
        f"grant {grant.pk} was already revoked"
    )


def test_grant_errors(org: Org) -> None:
    user_with_role("adm", "admin", org.company)
    user_with_role("newbie", None)
    base = ("--reason", "r", "--as", "adm")
    assert refused("grant", "adm", "finance", "HQ", *base) == (
        "separation of duties: nobody grants a role to themselves"
    )
    assert refused("grant", "ghost", "finance", "HQ", *base) == "no user 'ghost'"
    assert refused("grant", "newbie", "boss", "HQ", *base).startswith("no role 'boss'; roles:")
    assert refused("grant", "newbie", "finance", "XX", *base) == "unknown organisation unit 'XX'"
    assert "unknown document type invoice" in refused(
        "grant", "newbie", "finance", "HQ", "--types", "invoice", *base
    )
    assert "'tomorrow' is not a date" in refused(
        "grant", "newbie", "finance", "HQ", "--until", "tomorrow", *base
    )
    assert (
        refused("grant", "newbie", "finance", "HQ", "--until", "2001-01-01", *base)
        == "a grant must end after it starts"
    )
    assert "--reason" in refused("grant", "newbie", "finance", "HQ", "--as", "adm")
    assert refused("grant", "newbie", "finance", "HQ", "--reason", "r", "--as", "newbie") == (
        "newbie lacks permission 'access.manage' (manage access) in HQ for granting roles"
    )
    assert refused("revoke", "x1", "--reason", "r", "--as", "adm") == (
        "grant id 'x1' is not a number such as 12"
    )
    assert refused("revoke", "999", "--reason", "r", "--as", "adm") == "no grant #999"
    assert not Grant.objects.filter(user__username="newbie").exists()
