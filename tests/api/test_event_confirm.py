"""Confirming a pending business event through the API (POST /api/events/{id}/confirm): the
only way a pending event (a receipt awaiting inspection) stops blocking its document's close."""

from decimal import Decimal

import pytest

from closeout.closing.selectors import close_checklist_for
from closeout.documents.models import BusinessEvent, Document, EventStatus, Line
from tests.api.conftest import Api, ApiFactory, error_of
from tests.factories import PO, Org, make_document

pytestmark = pytest.mark.django_db


def pending_receipt(integration: Api, number: str, external_id: str = "R-P") -> int:
    response = integration.post(
        "/api/events",
        {
            "events": [
                {
                    "doc_type": "purchase_order",
                    "number": number,
                    "kind": "receipt",
                    "external_id": external_id,
                    "line_no": 1,
                    "quantity": "10",
                    "occurred_at": "2026-01-20T10:00:00+08:00",
                    "pending": True,
                }
            ]
        },
    )
    result = response.json()["results"][0]
    assert result["outcome"] == "pending"
    return int(result["event_id"])


def test_a_confirmed_event_applies_and_stops_blocking(integration: Api, org: Org) -> None:
    doc = make_document(PO, org.dept_a, ((10, 5),), number="CF-1")
    event_id = pending_receipt(integration, "CF-1")
    assert "events_settled" in [c.rule.code for c in close_checklist_for(doc).blocking]
    response = integration.post(
        f"/api/events/{event_id}/confirm", headers={"Accept-Language": "en"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["outcome"], body["event_id"], body["external_id"]) == ("applied", event_id, "R-P")
    assert body["message"] == "Event applied."
    assert BusinessEvent.objects.get(pk=event_id).status == EventStatus.APPLIED
    assert Line.objects.get(document=doc).fulfilled_qty == Decimal(10)
    doc = Document.objects.get(pk=doc.pk)
    assert "events_settled" not in [c.rule.code for c in close_checklist_for(doc).blocking]


def test_confirming_twice_is_refused_naming_the_event(integration: Api, org: Org) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="CF-2")
    event_id = pending_receipt(integration, "CF-2")
    assert integration.post(f"/api/events/{event_id}/confirm").status_code == 200
    again = integration.post(f"/api/events/{event_id}/confirm", headers={"Accept-Language": "en"})
    assert again.status_code == 422
    error = error_of(again)
    assert error["code"] == "invalid_input"
    assert "R-P" in error["message"] and "not pending" in error["message"]


def test_an_unknown_or_invisible_event_is_not_found(
    integration: Api, api_for: ApiFactory, org: Org
) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="CF-3")
    event_id = pending_receipt(integration, "CF-3")
    assert integration.post("/api/events/999999/confirm").status_code == 404
    other_unit = api_for("integration", unit=org.dept_b)
    response = other_unit.post(f"/api/events/{event_id}/confirm")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    assert BusinessEvent.objects.get(pk=event_id).status == EventStatus.PENDING


def test_confirming_needs_the_sync_permission(
    api_for: ApiFactory, integration: Api, org: Org
) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="CF-4")
    event_id = pending_receipt(integration, "CF-4")
    response = api_for("auditor").post(f"/api/events/{event_id}/confirm")
    assert response.status_code == 403
    assert BusinessEvent.objects.get(pk=event_id).status == EventStatus.PENDING
