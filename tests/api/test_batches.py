"""Batch jobs through the API, and the dry-run sweep."""

from typing import Any

import pytest

from closeout.closing.models import SweepRun
from closeout.documents.models import Document
from tests.api.conftest import ApiFactory, error_of
from tests.factories import PO, Org, lenient, make_document, ready_document

pytestmark = pytest.mark.django_db


def test_create_preview_start_progress_items(
    api_for: ApiFactory, org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    for i in range(3):
        ready_document(PO, org.dept_a, number=f"B-{i}")
    make_document(PO, org.dept_a, number="B-OPEN")
    api = api_for("operator")
    created = api.post(
        "/api/batches",
        {
            "action": "close",
            "doc_type": "purchase_order",
            "numbers": ["B-0", "B-1", "B-2", "B-OPEN"],
            "reason": "completed",
        },
    )
    assert created.status_code == 201, created.content
    job = created.json()
    assert job["total"] == 4 and job["state"] == "draft"
    preview = api.post(f"/api/batches/{job['id']}/preview").json()
    assert preview["state"] == "previewed" and sum(preview["predicted"].values()) == 4
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(f"/api/batches/{job['id']}/start", {"workers": 1})
    assert started.status_code == 200
    progress = api.get(f"/api/batches/{job['id']}").json()
    assert progress["state"] == "done" and progress["processed"] == 4
    assert progress["succeeded"] == 3 and progress["failed"] + progress["skipped"] == 1
    page = api.get(f"/api/batches/{job['id']}/items", limit=3).json()
    rest = api.get(f"/api/batches/{job['id']}/items", cursor=page["next_cursor"]).json()
    items = page["items"] + rest["items"]
    assert [i["label"] for i in items] == ["B-0", "B-1", "B-2", "B-OPEN"]
    assert Document.objects.filter(number__startswith="B-", close_state="closed").count() == 3
    again = api.post(f"/api/batches/{job['id']}/start")
    assert again.status_code == 422


def test_batch_by_filter_cancel_and_owner_only(api_for: ApiFactory, org: Org) -> None:
    for i in range(2):
        ready_document(PO, org.dept_a, number=f"BF-{i}")
    api = api_for("operator")
    job = api.post(
        "/api/batches",
        {
            "action": "close",
            "doc_type": "purchase_order",
            "filter": {"doc_type": "purchase_order", "number": "BF-"},
            "reason": "completed",
        },
    ).json()
    assert job["total"] == 2
    other = api_for("operator")
    assert other.get(f"/api/batches/{job['id']}").status_code == 403
    assert other.post(f"/api/batches/{job['id']}/cancel").status_code == 403
    cancelled = api.post(f"/api/batches/{job['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert api.get("/api/batches/999999").status_code == 404


def test_batch_bad_input_and_permission(api_for: ApiFactory, org: Org) -> None:
    api = api_for("operator")
    bad = api.post("/api/batches", {"action": "explode"})
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "action"
    none = api.post(
        "/api/batches",
        {
            "action": "close",
            "doc_type": "purchase_order",
            "numbers": ["NOPE"],
            "reason": "completed",
        },
    )
    assert none.status_code in (404, 422)
    error_of(none)
    refused = api_for("auditor").post(
        "/api/batches",
        {"action": "close", "doc_type": "purchase_order", "numbers": ["X"], "reason": "completed"},
    )
    assert refused.status_code == 403


def test_sweep_dry_run_changes_nothing(api_for: ApiFactory, org: Org) -> None:
    lenient(PO)
    ready_document(PO, org.dept_a, number="SW-1")
    make_document(PO, org.dept_a, number="SW-2")
    api = api_for("operator")
    body = api.post("/api/sweep/dry-run", {"doc_type": "purchase_order"}).json()
    assert body["dry_run"] is True and body["would_close"] == 1 and body["examined"] == 2
    assert body["rule_failures"]["purchase_order.received"] == 1
    assert not Document.objects.filter(close_state="closed").exists()
    assert SweepRun.objects.filter(dry_run=True).count() == 1
    assert api_for(None).post("/api/sweep/dry-run", {}).status_code == 403
    bad = api.post("/api/sweep/dry-run", {"doc_type": "nope"})
    assert bad.status_code in (403, 422)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_start_without_broker_is_503_and_the_job_waits_queued(
    api_for: ApiFactory, org: Org, dead_broker: None
) -> None:
    """Issue 11, item 8: the broker does not answer → 503 with the JSON error shape, the job
    committed as queued with its tasks still to send (never a 500, never half-committed)."""
    ready_document(PO, org.dept_a, number="BQ-1")
    api = api_for("operator")
    job = api.post(
        "/api/batches",
        {
            "action": "close",
            "doc_type": "purchase_order",
            "numbers": ["BQ-1"],
            "reason": "completed",
        },
    ).json()
    response = api.post(f"/api/batches/{job['id']}/start", {"workers": 2})
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "broker_unavailable"
    assert error["message"].startswith(f"batch #{job['id']} is queued but not running yet")
    assert error["details"]["batch"] == job["id"] and error["details"]["state"] == "queued"
    progress = api.get(f"/api/batches/{job['id']}").json()
    assert (progress["state"], progress["send_pending"]) == ("queued", 2)
    assert progress["send_error"].startswith("the task broker does not answer")
    # Issue 17: the batch page says it in the reader's language (the API keeps English).
    from django.utils import translation

    from closeout.batches.models import BatchJob
    from closeout.web.templatetags.closeout_web import job_send_error

    stored = BatchJob.objects.get(pk=job["id"])
    with translation.override("zh-hans"):
        assert job_send_error(stored).startswith("任务队列服务无响应(")
    with translation.override("en"):
        assert job_send_error(stored) == progress["send_error"]


def test_failed_run_shows_its_reason_and_resume_finishes(
    api_for: ApiFactory,
    org: Org,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.db import OperationalError

    from closeout.batches import process

    settings.CLOSEOUT_TASKS_INLINE, settings.CELERY_BROKER_URL = True, ""
    settings.CLOSEOUT_BATCH_RETRIES, settings.CLOSEOUT_BATCH_RETRY_BACKOFF = 1, 0
    ready_document(PO, org.dept_a, number="BR-1")
    api = api_for("operator")
    job = api.post(
        "/api/batches",
        {
            "action": "close",
            "doc_type": "purchase_order",
            "numbers": ["BR-1"],
            "reason": "completed",
        },
    ).json()

    def lost(job: Any, items: Any) -> None:
        raise OperationalError("the connection to the database was lost")

    original = process._process
    monkeypatch.setattr(process, "_process", lost)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/batches/{job['id']}/start").status_code == 200
    failed = api.get(f"/api/batches/{job['id']}").json()
    assert failed["state"] == "failed"
    assert failed["error"].startswith("database connection lost (OperationalError: the conn")
    monkeypatch.setattr(process, "_process", original)
    with django_capture_on_commit_callbacks(execute=True):
        resumed = api.post(f"/api/batches/{job['id']}/resume", {"workers": 1})
    assert resumed.status_code == 200
    done = api.get(f"/api/batches/{job['id']}").json()
    assert (done["state"], done["succeeded"], done["error"]) == ("done", 1, "")


def test_undo_a_batch_through_the_api(
    api_for: ApiFactory, org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    for i in range(2):
        ready_document(PO, org.dept_a, number=f"BU-{i}")
    api = api_for("supervisor")
    job = api.post(
        "/api/batches",
        {"action": "close", "doc_type": PO, "numbers": ["BU-0", "BU-1"], "reason": "completed"},
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/batches/{job['id']}/start", {"workers": 1})
    created = api.post(f"/api/batches/{job['id']}/undo", {"reason": "wrong_close"})
    assert created.status_code == 201, created.content
    undo = created.json()
    assert (undo["action"], undo["undoes"], undo["state"]) == ("undo", job["id"], "previewed")
    assert undo["predicted"] == {"would_reopen": 2}
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/batches/{undo['id']}/start", {"workers": 1})
    assert api.get(f"/api/batches/{job['id']}").json()["undone_by"] == undo["id"]
    assert Document.objects.filter(number__startswith="BU-", close_state="open").count() == 2
    again = api.post(f"/api/batches/{job['id']}/undo")
    assert again.status_code == 422
    assert f"already undone by #{undo['id']}" in error_of(again)["message"]
