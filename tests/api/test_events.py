"""Business events: one call, many items, each with its own outcome."""

from decimal import Decimal

import pytest

from closeout.closing.services import document_close
from closeout.documents.models import BusinessEvent, Line
from tests.api.conftest import Api, ApiFactory, error_of
from tests.factories import PO, Org, make_document, ready_document, user_with_role

pytestmark = pytest.mark.django_db


def ev(number: str, external_id: str, **extra: object) -> dict[str, object]:
    return {
        "doc_type": "purchase_order",
        "number": number,
        "kind": "receipt",
        "external_id": external_id,
        "line_no": 1,
        "quantity": "4",
        "occurred_at": "2026-01-20T10:00:00+08:00",
        "source_system": "erp",
        **extra,
    }


def test_each_item_gets_its_outcome(integration: Api, org: Org) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="EV-1")
    closed = ready_document(PO, org.dept_a, number="EV-CLOSED")
    document_close(
        actor=user_with_role("c", "operator", org.company), document=closed, reason_code="completed"
    )
    response = integration.post(
        "/api/events",
        {
            "events": [
                ev("EV-1", "R-1"),
                ev("EV-1", "R-1"),
                ev("EV-CLOSED", "R-2"),
                ev("EV-1", "R-3", quantity=2.5),
                ev("EV-1", "R-4", line_no=9),
                ev("NOPE", "R-5"),
                ev("EV-1", "R-6", pending=True),
                ev("EV-1", "R-7", occurred_at="2026-01-20T10:00:00"),
                ev("EV-1", "R-8", kind="count_result"),
                "not an object",
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    outcomes = [(r["index"], r["outcome"]) for r in body["results"]]
    assert outcomes == [
        (0, "applied"),
        (1, "duplicate"),
        (2, "quarantined"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "pending"),
        (7, "rejected"),
        (8, "rejected"),
        (9, "rejected"),
    ]
    results = body["results"]
    assert "closed" in results[2]["reason"]
    assert results[3]["errors"][0]["field"] == "quantity"
    assert results[4]["errors"][0]["field"] == "line_no" and results[4]["code"] == "not_found"
    assert results[5]["code"] == "not_found"
    assert results[7]["errors"][0]["field"] == "occurred_at"
    assert results[8]["errors"][0]["field"] == "kind"
    assert body["counts"] == {
        "applied": 1,
        "duplicate": 1,
        "quarantined": 1,
        "rejected": 6,
        "pending": 1,
    }
    line = Line.objects.get(document__number="EV-1", line_no=1)
    assert line.fulfilled_qty == Decimal(4)
    assert BusinessEvent.objects.filter(external_id__in=["R-1", "R-2", "R-6"]).count() == 3


def test_too_many_or_no_events_is_422(integration: Api) -> None:
    response = integration.post("/api/events", {"events": []})
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "events"
    many = [ev("X", f"E{i}") for i in range(10_001)]
    response = integration.post("/api/events", {"events": many})
    assert response.status_code == 422


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_posting_needs_sync_permission(api_for: ApiFactory, role: str, org: Org) -> None:
    make_document(PO, org.dept_a, number="EV-P")
    response = api_for(role).post("/api/events", {"events": [ev("EV-P", "P-1")]})
    assert response.status_code == 403
    assert not BusinessEvent.objects.filter(external_id="P-1").exists()


def test_sync_scoped_to_a_department_rejects_other_items(api_for: ApiFactory, org: Org) -> None:
    make_document(PO, org.dept_a, number="EV-A")
    make_document(PO, org.dept_b, number="EV-B")
    api = api_for("integration", unit=org.dept_a)
    body = api.post("/api/events", {"events": [ev("EV-A", "S-1"), ev("EV-B", "S-2")]}).json()
    assert [r["outcome"] for r in body["results"]] == ["applied", "rejected"]
    # Another department's document is rejected like a missing one (issue 12).
    assert body["results"][1]["code"] == "not_found"
    assert body["results"][1]["reason"] == "event: no purchase_order numbered 'EV-B'"


def test_same_external_id_with_other_values_is_a_conflict(integration: Api, org: Org) -> None:
    """Only an identical repeat is a duplicate; the same external id with another quantity or
    amount is rejected with code event_conflict, naming each field with both values."""
    make_document(PO, org.dept_a, ((10, 5),), number="EV-C")
    first = integration.post("/api/events", {"events": [ev("EV-C", "C-1", quantity="5")]})
    assert first.json()["counts"] == {"applied": 1}
    response = integration.post(
        "/api/events",
        {
            "events": [
                ev("EV-C", "C-1", quantity="5.0"),
                ev("EV-C", "C-1", quantity="6"),
                ev("EV-C", "C-1", quantity="5", kind="invoice", amount="25"),
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["counts"] == {"duplicate": 1, "rejected": 2}
    duplicate, changed, other_kind = body["results"]
    assert duplicate["outcome"] == "duplicate"
    assert (changed["outcome"], changed["code"]) == ("rejected", "event_conflict")
    assert changed["details"]["fields"] == {"quantity": {"stored": "5", "sent": "6"}}
    assert changed["errors"] == [{"field": "quantity", "message": "stored 5, sent 6"}]
    assert "C-1" in changed["reason"] and "quantity 5 (sent 6)" in changed["reason"]
    assert set(other_kind["details"]["fields"]) == {"kind", "amount"}
    line = Line.objects.get(document__number="EV-C", line_no=1)
    assert line.fulfilled_qty == Decimal(5)
    assert BusinessEvent.objects.filter(external_id="C-1").count() == 1


def test_return_beyond_received_is_rejected_with_the_quantities(integration: Api, org: Org) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="EV-R")
    integration.post("/api/events", {"events": [ev("EV-R", "G-7", quantity="7")]})
    response = integration.post(
        "/api/events", {"events": [ev("EV-R", "RT-10", kind="return", quantity="10")]}
    )
    (item,) = response.json()["results"]
    assert (item["outcome"], item["code"]) == ("rejected", "event_refused")
    assert item["errors"][0]["field"] == "quantity"
    assert "more than received 7 (it would become -3)" in item["errors"][0]["message"]
    assert item["details"]["measures"]["fulfilled_qty"]["after"] == "-3"
    assert Line.objects.get(document__number="EV-R", line_no=1).fulfilled_qty == Decimal(7)
