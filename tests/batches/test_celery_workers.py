"""Batch jobs on real Celery worker processes with Redis as broker and PostgreSQL: each
eligible document is closed exactly once across two workers, and a worker killed with SIGKILL
in the middle leaves every document either closed with its audit event or untouched."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.models import BatchAction, BatchItem, BatchJob, BatchState, ItemState
from closeout.batches.services import batch_create, batch_resume, batch_start
from closeout.closing.selectors import verdict_condition
from closeout.core.models import OrgUnit
from closeout.demo.bulk import generate_documents
from closeout.documents.models import CloseState, Document
from tests.factories import PO, user_with_role

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

REDIS_URL = os.environ.get("CLOSEOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
CELERY = Path(sys.executable).with_name("celery")


def _redis_answers() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return str(exc)
    return None


@pytest.fixture
def broker(settings: Any) -> Iterator[str]:
    problem = _redis_answers()
    if problem:
        if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required but does not answer: {problem}")
        pytest.skip(f"Redis not reachable ({problem})")
    queue = f"closeout-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CLOSEOUT_TASKS_INLINE = False
    from closeout.celery import app

    app.conf.broker_url = REDIS_URL
    app.conf.task_default_queue = queue
    yield queue
    app.conf.broker_url = ""
    import redis

    redis.Redis.from_url(REDIS_URL).delete(queue)


def _start_worker(queue: str, name: str) -> subprocess.Popen[bytes]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "CLOSEOUT_QUEUE": queue,
        # The workers seal audit events with this run's key, and checkpoint where it looks.
        "CLOSEOUT_AUDIT_KEY": django_settings.CLOSEOUT_AUDIT_KEY,
        "CLOSEOUT_AUDIT_KEY_FILE": str(django_settings.CLOSEOUT_AUDIT_KEY_FILE),
        "CLOSEOUT_AUDIT_CHECKPOINT_FILE": str(django_settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE),
    }
    return subprocess.Popen(
        [
            str(CELERY),
            "-A",
            "closeout.celery",
            "worker",
            "--concurrency=1",
            "--pool=solo",
            f"--hostname={name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
            "-Q",
            queue,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _wait_for(
    job: BatchJob, *, until: str = "done", minimum: int = 0, timeout: float = 240
) -> BatchJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if until == "done" and job.state == BatchState.DONE:
            return job
        if until == "progress" and job.processed >= minimum:
            return job
        time.sleep(0.2)
    raise AssertionError(f"batch #{job.pk} did not reach {until}: {job.processed}/{job.total}")


def _setup(documents: int, ready_share: str) -> tuple[Any, list[str]]:
    generate_documents(
        documents=documents,
        lines_per_document=2,
        ready_share=Decimal(ready_share),
        seed=7,
        prefix="CEL",
        org_code="CEL",
    )
    buyer = user_with_role("celery-buyer", "operator", OrgUnit.objects.get(code="CEL"))
    numbers = list(Document.objects.filter(doc_type=PO).values_list("number", flat=True))
    return buyer, numbers


def _assert_consistent(job: BatchJob) -> None:
    """Every item done ⇔ its document closed with exactly one close audit event."""
    closed = set(
        Document.objects.filter(close_state=CloseState.CLOSED).values_list("pk", flat=True)
    )
    done = set(
        BatchItem.objects.filter(job=job, outcome="closed").values_list("document_id", flat=True)
    )
    assert closed == done
    events = AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED)
    assert events.count() == len(closed)
    per_document = events.values("object_id").annotate(n=Count("id")).filter(n__gt=1)
    assert not per_document.exists(), "a document was closed twice"
    assert audit_chain_verify().intact


def test_two_workers_close_each_eligible_document_exactly_once(broker: str) -> None:
    buyer, numbers = _setup(5000, "0.5")
    job = batch_create(
        actor=buyer, action=BatchAction.CLOSE, doc_type=PO, numbers=numbers, reason_code="completed"
    )
    # Closable by hand (no blocking or exception rule fails): more than the sweep would take,
    # since the grace days only hold back the automatic close.
    eligible = Document.objects.filter(
        verdict_condition(PO, "ready") | verdict_condition(PO, "warning")
    ).count()
    assert eligible >= 2500
    workers = [_start_worker(broker, f"w{i}") for i in (1, 2)]
    try:
        batch_start(actor=buyer, job=job, workers=4)
        job = _wait_for(job)
    finally:
        for worker in workers:
            _stop(worker)
    assert (job.processed, job.succeeded, job.failed) == (5000, eligible, 5000 - eligible)
    assert Document.objects.filter(close_state=CloseState.CLOSED).count() == eligible
    _assert_consistent(job)
    by_worker = set(BatchItem.objects.filter(job=job).values_list("worker", flat=True))
    assert len(by_worker) == 2, f"both worker processes took chunks: {by_worker}"


def test_worker_killed_mid_batch_then_resumed(broker: str) -> None:
    buyer, numbers = _setup(3000, "1")
    job = batch_create(
        actor=buyer, action=BatchAction.CLOSE, doc_type=PO, numbers=numbers, reason_code="completed"
    )
    worker = _start_worker(broker, "victim")
    try:
        batch_start(actor=buyer, job=job, workers=1)
        job = _wait_for(job, until="progress", minimum=400)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=20)
    finally:
        _stop(worker)
    job.refresh_from_db()
    assert 0 < job.processed < job.total, "the kill landed in the middle of the batch"
    # Whatever the kill interrupted was rolled back: state and audit agree.
    _assert_consistent(job)
    assert (
        BatchItem.objects.filter(job=job, state=ItemState.PENDING).count()
        == job.total - job.processed
    )
    worker = _start_worker(broker, "survivor")
    try:
        batch_resume(actor=buyer, job=job, workers=1)
        job = _wait_for(job)
    finally:
        _stop(worker)
    assert job.succeeded == 3000
    _assert_consistent(job)
