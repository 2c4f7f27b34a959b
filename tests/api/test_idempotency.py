"""`Idempotency-Key`: a retry returns the first response and changes nothing."""

import pytest

from closeout.approvals.models import CloseRequest
from closeout.documents.models import BusinessEvent
from tests.api.conftest import ApiFactory, error_of
from tests.approvals.conftest import make_route, short_po
from tests.factories import PO, Org, make_document

pytestmark = pytest.mark.django_db


def test_retry_returns_first_response_and_changes_nothing(api_for: ApiFactory, org: Org) -> None:
    make_route("one step", doc_type=PO)
    document = short_po(org.dept_a)
    api = api_for("operator")
    url = f"/api/documents/purchase_order/{document.number}/close-requests"
    body = {"reason": "short_delivery_accepted", "remark": "supplier stopped"}
    first = api.post(url, body, headers={"Idempotency-Key": "k-1"})
    second = api.post(url, body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replay"] == "true"
    assert CloseRequest.objects.filter(document=document).count() == 1
    # Without the key, the second submission is refused by the service (already pending).
    assert api.post(url, body).status_code == 409


def test_same_key_other_body_is_refused(api_for: ApiFactory, org: Org) -> None:
    make_document(PO, org.dept_a, number="I-1")
    api = api_for("integration")
    event = {
        "doc_type": "purchase_order",
        "number": "I-1",
        "kind": "receipt",
        "external_id": "IK-1",
        "line_no": 1,
        "quantity": "1",
    }
    first = api.post("/api/events", {"events": [event]}, headers={"Idempotency-Key": "k-2"})
    assert first.json()["counts"] == {"applied": 1}
    other = api.post(
        "/api/events",
        {"events": [{**event, "external_id": "IK-2"}]},
        headers={"Idempotency-Key": "k-2"},
    )
    assert other.status_code == 422
    assert error_of(other)["code"] == "idempotency_key_reused"
    assert not BusinessEvent.objects.filter(external_id="IK-2").exists()
    # Keys belong to one user: another user's same key is a new request.
    second_user = api_for("integration")
    third = second_user.post(
        "/api/events",
        {"events": [{**event, "external_id": "IK-3"}]},
        headers={"Idempotency-Key": "k-2"},
    )
    assert third.json()["counts"] == {"applied": 1}


def test_errors_are_replayed_too(api_for: ApiFactory, org: Org) -> None:
    api = api_for("operator")
    url = "/api/documents/purchase_order/NOPE/close"
    first = api.post(url, {"reason": "completed"}, headers={"Idempotency-Key": "k-3"})
    second = api.post(url, {"reason": "completed"}, headers={"Idempotency-Key": "k-3"})
    assert first.status_code == second.status_code == 404
    assert first.json() == second.json()
