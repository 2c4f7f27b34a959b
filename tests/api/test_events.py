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
