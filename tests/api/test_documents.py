"""Documents: ERP upsert (idempotent, If-Match, locked), list with cursor, detail, checklist."""

from typing import Any

import pytest

from closeout.audit.models import AuditAction
from closeout.documents.models import Document, EventKind
from tests.api.conftest import Api, ApiFactory, error_of, po_body
from tests.factories import (
    PO,
    Org,
    actions_since,
    audit_head,
    document_events,
    make_document,
    post,
    ready_document,
)

pytestmark = pytest.mark.django_db

URL = "/api/documents/purchase_order"


def test_upsert_creates_then_is_idempotent_then_updates(integration: Api) -> None:
    created = integration.put(f"{URL}/PO-1", po_body(external_id="X-1"))
    assert created.status_code == 201
    assert created["ETag"] == '"1"'
    body = created.json()
    assert [line["planned_qty"] for line in body["lines"]] == ["10.0000", "4.0000"]
    assert body["lines"][0]["item"] == "BOLT-1"
    again = integration.put(f"{URL}/PO-1", po_body(external_id="X-1"))
    assert again.status_code == 200 and again["ETag"] == '"1"'
    assert Document.objects.filter(number="PO-1").count() == 1
    changed_lines = [{"line_no": 1, "planned_qty": "12", "unit_price": "5.50"}]
    changed = integration.put(f"{URL}/PO-1", po_body(external_id="X-1", lines=changed_lines))
    assert changed.status_code == 200 and changed["ETag"] == '"2"'
    assert changed.json()["total_amount"] == "466.0000"


def test_stale_if_match_is_412(integration: Api) -> None:
    integration.put(f"{URL}/PO-2", po_body())
    lines = [{"line_no": 1, "planned_qty": "11", "unit_price": "5.50"}]
    stale = integration.put(f"{URL}/PO-2", po_body(lines=lines), headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert error_of(stale)["details"]["version"] == 1
    ok = integration.put(f"{URL}/PO-2", po_body(lines=lines), headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    garbage = integration.put(f"{URL}/PO-2", po_body(), headers={"If-Match": "abc"})
    assert garbage.status_code == 412


def test_change_to_closed_document_is_409_and_recorded(integration: Api, org: Org) -> None:
    document = ready_document(PO, org.dept_a, number="PO-LOCK")
    operator = integration.__class__  # noqa: F841 (keeps the import of Api used in hints)
    from closeout.closing.services import document_close
    from tests.factories import user_with_role

    closer = user_with_role("closer", "operator", org.company)
    document_close(actor=closer, document=document, reason_code="completed")
    response = integration.put(f"{URL}/PO-LOCK", po_body())
    assert response.status_code == 409
    body = error_of(response)
    assert body["code"] == "document_locked" and "reopen" in body["message"]
    assert len(document_events(document, AuditAction.DOCUMENT_CHANGE_REFUSED)) == 1


def test_external_id_of_another_document_is_409(integration: Api) -> None:
    integration.put(f"{URL}/PO-3", po_body(external_id="SAME"))
    response = integration.put(f"{URL}/PO-4", po_body(external_id="SAME"))
    assert response.status_code == 409
    assert "PO-3" in error_of(response)["message"]


def test_unknown_partner_and_org_unit_are_422(integration: Api) -> None:
    response = integration.put(f"{URL}/PO-5", po_body(partner="NOPE"))
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "partner"
    response = integration.put(f"{URL}/PO-5", po_body(org_code="NOPE"))
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "org_unit"
    ok = integration.put("/api/partners/V-1", {"name": "Vendor 1", "kind": "supplier"})
    assert ok.status_code == 201
    assert integration.put("/api/partners/V-1", {"name": "Vendor One"}).status_code == 200
    response = integration.put(f"{URL}/PO-5", po_body(partner="V-1"))
    assert response.status_code == 201 and response.json()["partner"] == "V-1"


@pytest.mark.parametrize("role", ["operator", "auditor", "supervisor"])
def test_upsert_needs_sync_permission(api_for: ApiFactory, role: str) -> None:
    response = api_for(role).put(f"{URL}/PO-6", po_body())
    assert response.status_code == 403
    assert error_of(response)["details"]["permission"] == "document.sync"
    assert not Document.objects.filter(number="PO-6").exists()
    assert api_for(role).put("/api/partners/V-9", {"name": "x"}).status_code == 403


def test_list_filters_scope_and_cursor(api_for: ApiFactory, org: Org) -> None:
    for i in range(5):
        make_document(PO, org.dept_a, number=f"LIST-A{i}")
    make_document(PO, org.dept_b, number="LIST-B0")
    ready_document(PO, org.dept_a, number="LIST-READY")
    everyone = api_for("operator")
    first = everyone.get("/api/documents", doc_type="purchase_order", number="LIST-A", limit=3)
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = everyone.get(
        "/api/documents",
        doc_type="purchase_order",
        number="LIST-A",
        limit=3,
        cursor=page["next_cursor"],
    ).json()
    numbers = [d["number"] for d in page["items"] + rest["items"]]
    assert sorted(numbers) == [f"LIST-A{i}" for i in range(5)] and rest["next_cursor"] is None
    ready = everyone.get("/api/documents", doc_type="purchase_order", verdict="ready").json()
    assert [d["number"] for d in ready["items"]] == ["LIST-READY"]
    assert ready["items"][0]["verdict"] == "ready"
    dept_b_only = api_for("operator", unit=org.dept_b)
    seen = dept_b_only.get("/api/documents", doc_type="purchase_order").json()
    assert [d["number"] for d in seen["items"]] == ["LIST-B0"]
    assert api_for(None).get("/api/documents", doc_type="purchase_order").status_code == 403
    bad = everyone.get("/api/documents", doc_type="purchase_order", cursor="zz")
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "cursor"
    bad = everyone.get("/api/documents", doc_type="purchase_order", close_states="nope")
    assert bad.status_code == 422


def test_list_query_count_does_not_grow_with_page(
    api_for: ApiFactory, org: Org, django_assert_max_num_queries: Any
) -> None:
    for i in range(30):
        make_document(PO, org.dept_a, number=f"QC-{i}")
    api = api_for("operator")
    api.get("/api/documents", doc_type="purchase_order")  # warm the token's last-used time
    with django_assert_max_num_queries(12):
        response = api.get("/api/documents", doc_type="purchase_order", limit=30)
    assert len(response.json()["items"]) == 30


def test_detail_has_lines_checklist_and_etag(api_for: ApiFactory, org: Org) -> None:
    document = make_document(PO, org.dept_a, ((10, 5), (3, 2)), number="DET-1")
    post(document, EventKind.RECEIPT, 1, 4)
    api = api_for("operator")
    response = api.get("/api/documents/purchase_order/DET-1")
    assert response.status_code == 200
    document.refresh_from_db()
    assert response["ETag"] == f'"{document.version}"'
    body = response.json()
    assert body["lines"][0]["fulfilled_qty"] == "4.0000"
    checks = {c["rule"]: c for c in body["checklist"]["checks"]}
    assert checks["received"]["passed"] is False and checks["received"]["failing_lines"] == [1, 2]
    assert body["checklist"]["verdict"] in ("exception", "blocked")
    checklist = api.get("/api/documents/purchase_order/DET-1/checklist").json()
    assert checklist["checks"] == body["checklist"]["checks"]
    missing = api.get("/api/documents/purchase_order/NOPE")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    outsider = api_for("operator", unit=org.dept_b)
    # Another department's document answers like a missing one (issue 12).
    assert outsider.get("/api/documents/purchase_order/DET-1").status_code == 404


def test_partner_put_is_audited(integration: Api) -> None:
    head = audit_head()
    assert (
        integration.put("/api/partners/V-3", {"name": "V3", "kind": "customer"}).status_code == 201
    )
    assert (
        integration.put("/api/partners/V-3", {"name": "V3", "kind": "customer"}).status_code == 200
    )
    assert actions_since(head) == [AuditAction.PARTNER_CREATED]
