"""/healthz, /readyz and /metrics: no login, JSON bodies, 200/503; metrics behind a token or
the loopback address, counting requests, sweeps, batch jobs, the queue and checkpoints."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from closeout.batches.services import batch_create, batch_preview, batch_start
from closeout.closing.sweep import sweep_run
from closeout.core.request_id import current_request_id
from closeout.ops import views
from closeout.ops.probes import Check
from tests.factories import PO, Org, ready_document

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"


def samples(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_answers_without_login_and_without_the_database(client: Client) -> None:
    # No database access is allowed in this test: touching it would raise.
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_checks_database_and_migrations(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"] == {"ok": True, "detail": "all applied"}
    assert "broker" not in body["checks"]  # none configured: work runs in the process


@pytest.mark.django_db
def test_readyz_is_503_naming_unapplied_migrations(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = [(type("M", (), {"app_label": "closing", "name": "0042_new_rule"})(), False)]
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: pending)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["migrations"] == {
        "ok": False,
        "detail": "1 not applied: closing.0042_new_rule",
    }


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_does_not_answer(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "closeout.ops.probes.database_check", lambda: Check("database", False, "no answer")
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": {"ok": False, "detail": "no answer"}}


@pytest.mark.django_db
def test_readyz_checks_the_broker_when_one_is_configured(client: Client, settings: Any) -> None:
    from closeout.celery import app

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    app.conf.broker_url = settings.CELERY_BROKER_URL
    try:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["broker"]["ok"] is False
        assert down.json()["checks"]["database"]["ok"] is True
        settings.CELERY_BROKER_URL = app.conf.broker_url = REDIS_URL
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except Exception:
            if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
                raise
            pytest.skip("Redis does not answer at 127.0.0.1:6379")
        up = client.get("/readyz")
        assert up.status_code == 200
        assert up.json()["checks"]["broker"] == {"ok": True, "detail": "answers"}
    finally:
        app.conf.broker_url = ""


def test_request_id_is_kept_when_sane_and_set_during_the_request(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def readiness() -> list[Check]:
        seen.append(current_request_id.get())
        return []

    monkeypatch.setattr(views, "readiness", readiness)
    sane = client.get("/readyz", headers={"X-Request-ID": "lb-4f2a.9_Z"})
    assert sane["X-Request-ID"] == "lb-4f2a.9_Z" and seen == ["lb-4f2a.9_Z"]
    for hostile in ("a" * 65, "id with spaces", "x\u200by", "<script>", "a/b"):
        response = client.get("/readyz", headers={"X-Request-ID": hostile})
        assert response["X-Request-ID"] != hostile
        assert len(response["X-Request-ID"]) == 32
        assert seen[-1] == response["X-Request-ID"]
    fresh = client.get("/readyz")
    assert len(fresh["X-Request-ID"]) == 32 and fresh["X-Request-ID"] != sane["X-Request-ID"]
    assert seen[-1] == fresh["X-Request-ID"]
    assert current_request_id.get() == ""  # reset after the request


def test_metrics_need_the_token_or_the_loopback_address(
    client: Client, settings: Any, db: None
) -> None:
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403 and proxied.json()["code"] == "forbidden"
    outside = Client(REMOTE_ADDR="203.0.113.9")
    assert outside.get("/metrics").status_code == 403
    settings.CLOSEOUT_METRICS_TOKEN = "scrape-secret-0123456789"
    assert client.get("/metrics").status_code == 403  # with a token, loopback is not enough
    assert outside.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = outside.get("/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"})
    assert ok.status_code == 200


def test_metrics_count_requests_by_view_and_status(client: Client, db: None) -> None:
    before = samples(client)
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no-such-page/")
    after = samples(client)
    key = "closeout_http_requests_total"
    ok = {"view": "ops:healthz", "method": "GET", "status": "200"}
    assert value(after, key, **ok) - value(before, key, **ok) == 2
    missing = {"view": "<unresolved>", "method": "GET", "status": "404"}
    assert value(after, key, **missing) - value(before, key, **missing) >= 1
    count = "closeout_http_request_duration_seconds_count"
    assert value(after, count, view="ops:healthz", status="200") >= 2


@pytest.mark.django_db
def test_metrics_count_sweeps_batches_and_the_open_queue(
    client: Client,
    org: Org,
    operator: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    before = samples(client)
    ready = [ready_document(PO, org.dept_a) for _ in range(3)]
    sweep_run(doc_type=PO, dry_run=True)
    job = batch_create(
        actor=operator,
        action="close",
        doc_type=PO,
        numbers=[d.number for d in ready],
        reason_code="completed",
        close_date=timezone.localdate(),
    )
    batch_preview(actor=operator, job=job)
    with django_capture_on_commit_callbacks(execute=True):
        batch_start(actor=operator, job=job, workers=1)
    job.refresh_from_db()
    assert job.state == "done"
    ready_document(PO, org.dept_a)
    after = samples(client)
    runs = "closeout_sweep_runs_total"
    labels = {"doc_type": PO, "dry_run": "true"}
    assert value(after, runs, **labels) - value(before, runs, **labels) == 1
    assert value(after, "closeout_sweep_duration_seconds_count", **labels) >= 1
    finished = "closeout_batch_jobs_finished_total"
    assert value(after, finished, action="close") - value(before, finished, action="close") == 1
    items = "closeout_batch_items_total"
    done = {"action": "close", "outcome": "succeeded"}
    assert value(after, items, **done) - value(before, items, **done) == 3
    assert value(after, "closeout_open_documents", doc_type=PO) == 1
    assert value(after, "closeout_open_documents", doc_type="sales_order") == 0


def test_audit_checkpoint_age(client: Client, settings: Any, tmp_path: Path, db: None) -> None:
    path = tmp_path / "audit-checkpoints.jsonl"
    settings.CLOSEOUT_AUDIT_CHECKPOINTS = path
    assert value(samples(client), "closeout_audit_checkpoint_age_seconds") == -1
    old = timezone.now() - timedelta(hours=3)
    recent = timezone.now() - timedelta(minutes=10)
    path.write_text(
        "\n".join(json.dumps({"seq": n, "at": t.isoformat()}) for n, t in ((1, old), (2, recent)))
        + "\n"
    )
    age = value(samples(client), "closeout_audit_checkpoint_age_seconds")
    assert 10 * 60 <= age < 3 * 3600
    path.write_text("not json\n")
    assert value(samples(client), "closeout_audit_checkpoint_age_seconds") == -1


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (gunicorn workers), what one process counted shows in
    another's scrape."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "from closeout.core.metrics import observe_request; "
        "observe_request('web:queue', 'GET', 200, 0.1)"
    )
    scrape = (
        "from prometheus_client import generate_latest; "
        "from closeout.core.metrics import process_registry; "
        "print(generate_latest(process_registry()).decode())"
    )
    for code in (count, count):
        subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, timeout=60)
    result = subprocess.run(
        [sys.executable, "-c", scrape],
        env=env,
        cwd=REPO,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    line = 'closeout_http_requests_total{method="GET",status="200",view="web:queue"} 2.0'
    assert line in result.stdout
