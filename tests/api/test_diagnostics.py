"""Consistency checks and post-close verification through the API."""

from typing import Any

import pytest

from closeout.audit.models import AuditAction, AuditEvent
from closeout.batches.models import BatchAction
from closeout.batches.services import batch_create, batch_start
from closeout.documents.models import Document, EventKind
from closeout.reports.diagnostics import CHECKS
from closeout.reports.models import DiagnosticRun, PostCloseVerification
from tests.api.conftest import ApiFactory, error_of
from tests.factories import PO, SO, Org, make_document, post, ready_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def over(org: Org) -> dict[str, Document]:
    """Over-received orders in department A, an over-shipped sales order in department B."""
    orders = []
    for _ in range(3):
        po = make_document(PO, org.dept_a, ((10, 5),))
        post(po, EventKind.RECEIPT, 1, 12)
        orders.append(po)
    so = make_document(SO, org.dept_b, ((4, 10),))
    post(so, EventKind.SHIPMENT, 1, 6)
    return {"po": orders[0], "so": so}


def test_run_then_overview_with_counts(api_for: ApiFactory, over: dict[str, Document]) -> None:
    api = api_for("auditor")
    before = api.get("/api/diagnostics").json()
    assert before["last_run"] is None and [c["code"] for c in before["checks"]] == [
        c.code for c in CHECKS
    ]
    assert all(c["count"] is None and c["what_next"] for c in before["checks"])
    run = api.post("/api/diagnostics/run", {"stale_days": 10})
    assert run.status_code == 201, run.content
    body = run.json()
    assert body["counts"]["po_quantities"] == 3 and body["run_by"] == api.user.username
    assert DiagnosticRun.objects.get().pk == body["id"]
    audited = AuditEvent.objects.get(action=AuditAction.DIAGNOSTICS_RUN)
    assert audited.data["reopen_stale_days"] == 10
    after = api.get("/api/diagnostics").json()
    assert after["last_run"]["id"] == body["id"]
    assert next(c for c in after["checks"] if c["code"] == "po_quantities")["count"] == 3


def test_rows_paginated_and_limited_to_the_viewer(
    api_for: ApiFactory, org: Org, over: dict[str, Document]
) -> None:
    api = api_for("auditor")
    first = api.get("/api/diagnostics/po_quantities", limit=2).json()
    assert first["check"] == "po_quantities" and "problem" in first["columns"]
    assert len(first["items"]) == 2 and first["next_cursor"] == "2"
    rest = api.get("/api/diagnostics/po_quantities", limit=2, cursor=first["next_cursor"]).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    numbers = {row["doc_number"] for row in first["items"] + rest["items"]}
    assert over["po"].number in numbers and len(numbers) == 3
    assert isinstance(first["items"][0]["problem"], str)
    dept_b = api_for("auditor", unit=org.dept_b)
    assert dept_b.get("/api/diagnostics/po_quantities").json()["items"] == []
    so_rows = dept_b.get("/api/diagnostics/so_quantities").json()["items"]
    assert [r["doc_number"] for r in so_rows] == [over["so"].number]


def test_diagnostics_need_report_view(api_for: ApiFactory, over: dict[str, Document]) -> None:
    api = api_for("operator")
    for response in (
        api.get("/api/diagnostics"),
        api.post("/api/diagnostics/run"),
        api.get("/api/diagnostics/po_quantities"),
    ):
        assert response.status_code == 403
        assert "report.view" in error_of(response)["message"]
        assert error_of(response)["details"]["permission"] == "report.view"
    assert not DiagnosticRun.objects.exists()


def test_diagnostics_bad_input(api_for: ApiFactory, over: dict[str, Document]) -> None:
    api = api_for("auditor")
    unknown = api.get("/api/diagnostics/nope")
    assert unknown.status_code == 422
    assert error_of(unknown)["details"]["field"] == "check"
    assert "po_quantities" in error_of(unknown)["message"]
    for body in ({"stale_days": -1}, {"stale_days": "soon"}):
        refused = api.post("/api/diagnostics/run", body)
        assert refused.status_code == 422 and error_of(refused)["details"]["field"] == "stale_days"
    assert not DiagnosticRun.objects.exists()
    for params in ({"limit": 0}, {"cursor": "abc"}, {"limit": "many"}):
        response = api.get("/api/diagnostics/po_quantities", **params)
        assert response.status_code == 422
        assert error_of(response)["details"]["field"] in ("limit", "cursor")


@pytest.fixture
def batch(org: Org, operator: Any, django_capture_on_commit_callbacks: Any, settings: Any) -> Any:
    settings.CLOSEOUT_TASKS_INLINE = True
    docs = [ready_document(PO, org.dept_a) for _ in range(2)]
    job = batch_create(
        actor=operator,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in docs],
        reason_code="completed",
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch_start(actor=operator, job=job, workers=1)
    return job


def test_batch_verification_read_and_run(api_for: ApiFactory, batch: Any) -> None:
    api = api_for("auditor")
    automatic = api.get(f"/api/batches/{batch.pk}/verification")
    assert automatic.status_code == 200, automatic.content
    assert automatic.json()["passed"] is True and automatic.json()["run_by"] is None
    again = api.post(f"/api/batches/{batch.pk}/verification")
    assert again.status_code == 201
    body = again.json()
    assert body["passed"] and body["documents_checked"] == 2 and body["run_by"] == api.user.username
    assert PostCloseVerification.objects.filter(job=batch).count() == 2
    assert api.get(f"/api/batches/{batch.pk}/verification").json()["id"] == body["id"]


def test_batch_verification_permission_and_bad_input(
    api_for: ApiFactory, batch: Any, org: Org
) -> None:
    stranger = api_for("operator")
    for response in (
        stranger.get(f"/api/batches/{batch.pk}/verification"),
        stranger.post(f"/api/batches/{batch.pk}/verification"),
    ):
        assert response.status_code == 403
        assert "report.view" in error_of(response)["message"]
    api = api_for("auditor")
    missing = api.post("/api/batches/999999/verification")
    assert missing.status_code == 404 and error_of(missing)["details"]["field"] == "batch"
    assert api.get("/api/batches/notanumber/verification").status_code == 422
    PostCloseVerification.objects.all().delete()
    never = api.get(f"/api/batches/{batch.pk}/verification")
    assert never.status_code == 404 and "not been verified" in error_of(never)["message"]
