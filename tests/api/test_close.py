"""Direct close, close and reopen requests, approve / reject / withdraw, per role."""

import pytest

from closeout.approvals.models import CloseRequest
from closeout.documents.models import Document
from tests.api.conftest import ApiFactory, error_of
from tests.approvals.conftest import TWO_STEPS, make_route, short_po
from tests.factories import PO, Org, ready_document

pytestmark = pytest.mark.django_db

DOC = "/api/documents/purchase_order"


def test_direct_close_then_locked(api_for: ApiFactory, org: Org) -> None:
    document = ready_document(PO, org.dept_a, number="C-1")
    api = api_for("operator")
    response = api.post(f"{DOC}/C-1/close", {"reason": "completed", "remark": "done"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["header_closed"] is True and body["lines_closed"] == [1]
    assert body["document"]["close_state"] == "closed"
    document.refresh_from_db()
    assert document.close_state == "closed" and response["ETag"] == f'"{document.version}"'
    again = api.post(f"{DOC}/C-1/close", {"reason": "completed"})
    assert again.status_code == 409 and error_of(again)["code"] == "invalid_transition"


def test_close_with_stale_if_match_is_412(api_for: ApiFactory, org: Org) -> None:
    ready_document(PO, org.dept_a, number="C-2")
    api = api_for("operator")
    response = api.post(f"{DOC}/C-2/close", {"reason": "completed"}, headers={"If-Match": '"1"'})
    assert response.status_code == 412
    assert Document.objects.get(number="C-2").close_state == "open"


@pytest.mark.parametrize("role", ["auditor", "integration"])
def test_close_refused_without_permission(api_for: ApiFactory, org: Org, role: str | None) -> None:
    ready_document(PO, org.dept_a, number="C-3")
    response = api_for(role).post(f"{DOC}/C-3/close", {"reason": "completed"})
    assert response.status_code == 403
    assert error_of(response)["details"]["permission"] == "close.direct"


def test_a_document_outside_the_callers_scope_answers_like_a_missing_one(
    api_for: ApiFactory, org: Org
) -> None:
    """Issue 12: 403 naming the department told that the number exists, and where."""
    ready_document(PO, org.dept_b, number="C-3B")
    for api in (api_for(None), api_for("operator", unit=org.dept_a)):
        for method, path, body in (
            ("get", f"{DOC}/C-3B", None),
            ("get", f"{DOC}/C-3B/checklist", None),
            ("get", f"{DOC}/C-3B/audit", None),
            ("post", f"{DOC}/C-3B/close", {"reason": "completed"}),
            ("post", f"{DOC}/C-3B/close-requests", {"reason": "completed"}),
            ("post", f"{DOC}/C-3B/reopen-requests", {"reason": "wrong_close"}),
        ):
            hidden = api.get(path) if method == "get" else api.post(path, body)
            missing_path = path.replace("C-3B", "C-NONE")
            missing = api.get(missing_path) if method == "get" else api.post(missing_path, body)
            assert hidden.status_code == missing.status_code == 404, (path, hidden.content)
            assert (
                error_of(hidden)["message"].replace("C-3B", "C-NONE")
                == (error_of(missing)["message"])
            )
            assert "D-B" not in hidden.content.decode()


def test_bad_reason_is_422(api_for: ApiFactory, org: Org) -> None:
    ready_document(PO, org.dept_a, number="C-4")
    response = api_for("operator").post(f"{DOC}/C-4/close", {"reason": "because"})
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "reason"
    response = api_for("operator").post(f"{DOC}/C-4/close", {"remark": "no reason"})
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "reason"


def test_request_approve_flow_and_separation_of_duties(api_for: ApiFactory, org: Org) -> None:
    make_route("two steps", steps=TWO_STEPS, doc_type=PO)
    short_po(org.dept_a).number  # noqa: B018
    document = Document.objects.filter(doc_type=PO).latest("pk")
    requester = api_for("operator")
    submitted = requester.post(
        f"{DOC}/{document.number}/close-requests",
        {"reason": "short_delivery_accepted", "remark": "supplier stopped"},
    )
    assert submitted.status_code == 201, submitted.content
    request = submitted.json()
    assert request["state"] == "pending" and request["route"] == "two steps"
    rid = request["id"]
    # Direct close is refused while a route applies; no self-approval.
    assert requester.post(f"/api/requests/{rid}/approve", {}).status_code == 403
    supervisor = api_for("supervisor")
    step1 = supervisor.post(f"/api/requests/{rid}/approve", {"comment": "ok"})
    assert step1.status_code == 200 and step1.json()["current_step"] == 2
    assert supervisor.post(f"/api/requests/{rid}/approve", {}).status_code == 403
    finance = api_for("finance")
    done = finance.post(f"/api/requests/{rid}/approve", {"comment": "ok"}).json()
    assert done["state"] in ("executed", "approved")
    assert [d["decider"] for d in done["decisions"]] == [
        supervisor.user.username,
        finance.user.username,
    ]  # type: ignore[union-attr]
    document.refresh_from_db()
    assert document.close_state == "closed"
    assert requester.get(f"/api/requests/{rid}").json()["id"] == rid
    # A request on another unit's document answers like a missing one (issue 12).
    stranger = api_for("operator", unit=org.dept_b)
    hidden, missing = stranger.get(f"/api/requests/{rid}"), stranger.get("/api/requests/999999")
    assert hidden.status_code == missing.status_code == 404
    assert error_of(hidden)["message"] == error_of(missing)["message"].replace("999999", str(rid))
    for action in ("approve", "reject", "withdraw"):
        assert stranger.post(f"/api/requests/{rid}/{action}", {"comment": "x"}).status_code == 404
    assert requester.get("/api/requests/999999").status_code == 404


def test_reject_needs_comment_and_withdraw_is_requester_only(api_for: ApiFactory, org: Org) -> None:
    make_route("one step", doc_type=PO)
    document = short_po(org.dept_a)
    requester = api_for("operator")
    rid = requester.post(
        f"{DOC}/{document.number}/close-requests",
        {"reason": "short_delivery_accepted", "remark": "supplier stopped"},
    ).json()["id"]
    supervisor = api_for("supervisor")
    no_comment = supervisor.post(f"/api/requests/{rid}/reject", {})
    assert no_comment.status_code == 422 and error_of(no_comment)["details"]["field"] == "comment"
    assert api_for("operator").post(f"/api/requests/{rid}/withdraw", {}).status_code == 403
    withdrawn = requester.post(f"/api/requests/{rid}/withdraw", {"reason": "wrong one"})
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    again = requester.post(f"/api/requests/{rid}/withdraw", {})
    assert again.status_code == 409


def test_reopen_request(api_for: ApiFactory, org: Org) -> None:
    make_route("reopen", action="reopen", doc_type=PO)
    ready_document(PO, org.dept_a, number="R-1")
    operator = api_for("operator")
    operator.post(f"{DOC}/R-1/close", {"reason": "completed"})
    response = operator.post(
        f"{DOC}/R-1/reopen-requests", {"reason": "late_delivery", "remark": "goods came"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["action"] == "reopen" and response.json()["state"] == "pending"
    assert CloseRequest.objects.filter(action="reopen").count() == 1
    assert (
        api_for("auditor")
        .post(f"{DOC}/R-1/reopen-requests", {"reason": "late_delivery", "remark": "goods came"})
        .status_code
        == 403
    )
