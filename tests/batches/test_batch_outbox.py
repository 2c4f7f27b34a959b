"""Starting a batch while the task broker does not answer (issue 11, item 8): nothing is
half-committed. The start commits the job `queued` with its audit event and, in the same
transaction, the worker tasks to send (the job's outbox); sending happens after commit, and
when it fails the job keeps them with `send_error`, the caller gets BrokerUnavailable (CLI: one
line, exit 1; API: 503 broker_unavailable), and the scheduler, a worker's start or `batch
resume` sends them once the broker is back (a real Redis here)."""

import os
import time
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from closeout.audit.models import AuditAction, AuditEvent
from closeout.batches.models import BatchAction, BatchJob, BatchState
from closeout.batches.services import (
    batch_create,
    batch_dispatch_pending,
    batch_resume,
    batch_start,
)
from closeout.batches.signals import send_unsent_batches
from closeout.batches.tasks import batch_dispatch_pending_task
from closeout.core.errors import BrokerUnavailable
from closeout.documents.models import CloseState, Document
from tests.conftest import DEAD_BROKER, point_broker
from tests.factories import PO, complete, make_document, org_tree, user_with_role

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REDIS_URL = os.environ.get("CLOSEOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


@pytest.fixture
def redis_queue() -> Iterator[tuple[Any, str]]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required but does not answer: {exc}")
        pytest.skip(f"Redis not reachable ({exc})")
    queue = f"closeout-test-{uuid.uuid4().hex[:8]}"
    yield client, queue
    client.delete(queue)


def _started_job(n: int = 2) -> tuple[User, BatchJob]:
    org = org_tree()
    buyer = user_with_role("outbox-buyer", "operator", org.company)
    docs = [complete(make_document(PO, org.dept_a)) for _ in range(n)]
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in docs],
        reason_code="completed",
    )
    return buyer, job


def test_start_without_broker_keeps_the_job_queued_with_its_outbox(dead_broker: None) -> None:
    buyer, job = _started_job()
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught:
        batch_start(actor=buyer, job=job, workers=2)
    assert time.monotonic() - began < 10
    error = caught.value
    assert (error.code, error.http_status) == ("broker_unavailable", 503)
    assert f"batch #{job.pk} is queued but not running yet: the task broker does not answer" in (
        error.message
    )
    assert f"closeout batch resume {job.pk}" in error.message
    assert error.details["batch"] == job.pk and error.details["state"] == "queued"
    job.refresh_from_db()
    # Committed whole: queued, its audit event, and the two tasks still to send.
    assert (job.state, job.send_pending) == (BatchState.QUEUED, 2)
    assert "127.0.0.1:1" in job.send_error and job.send_attempted_at is not None
    started = AuditEvent.objects.filter(action=AuditAction.BATCH_STARTED, object_id=str(job.pk))
    assert started.count() == 1
    assert not Document.objects.filter(close_state=CloseState.CLOSED).exists()
    # Starting again (a retry of the request) tries to send again; no second start event.
    with pytest.raises(BrokerUnavailable):
        batch_start(actor=buyer, job=job, workers=2)
    assert started.count() == 1
    # `batch status` says what waits, and why.
    out = StringIO()
    call_command("batch", "status", str(job.pk), stdout=out)
    assert "not sent yet (2 worker task(s)): the task broker does not answer" in out.getvalue()
    # The scheduler's round finds the broker still away and leaves the outbox as it is.
    assert batch_dispatch_pending() == 0
    job.refresh_from_db()
    assert job.send_pending == 2


def test_cli_batch_run_without_broker_is_one_line_and_exit_1(dead_broker: None) -> None:
    buyer, job = _started_job()
    with pytest.raises(CommandError) as caught:
        call_command("batch", "run", str(job.pk), "--as", buyer.username, stdout=StringIO())
    message = str(caught.value)
    assert caught.value.returncode == 1 and "\n" not in message
    assert message.startswith(f"batch #{job.pk} is queued but not running yet")
    assert BatchJob.objects.get(pk=job.pk).state == BatchState.QUEUED


def test_outbox_is_sent_once_the_broker_is_back(
    dead_broker: None, settings: Any, redis_queue: tuple[Any, str]
) -> None:
    client, queue = redis_queue
    buyer, job = _started_job()
    with pytest.raises(BrokerUnavailable):
        batch_start(actor=buyer, job=job, workers=2)
    # The broker comes back: the scheduler's next round sends the recorded tasks.
    point_broker(settings, REDIS_URL, queue)
    assert batch_dispatch_pending_task.run() == 1
    job.refresh_from_db()
    assert (job.state, job.send_pending, job.send_error) == (BatchState.QUEUED, 0, "")
    assert client.llen(queue) == 2
    # Nothing left: another round (or a worker's start) sends nothing twice.
    send_unsent_batches()
    assert batch_dispatch_pending() == 0 and client.llen(queue) == 2


def test_resume_sends_the_outbox_and_a_worker_start_does_too(
    dead_broker: None, settings: Any, redis_queue: tuple[Any, str]
) -> None:
    client, queue = redis_queue
    buyer, first = _started_job()
    with pytest.raises(BrokerUnavailable):
        batch_start(actor=buyer, job=first, workers=1)
    point_broker(settings, REDIS_URL, queue)
    batch_resume(actor=buyer, job=first, workers=1)
    first.refresh_from_db()
    assert (first.send_pending, first.send_error) == (0, "") and client.llen(queue) == 1
    # A job left unsent while the broker was away is sent by the next worker that starts.
    point_broker(settings, DEAD_BROKER)
    second = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=list(Document.objects.values_list("number", flat=True)),
        reason_code="completed",
    )
    with pytest.raises(BrokerUnavailable):
        batch_start(actor=buyer, job=second, workers=1)
    point_broker(settings, REDIS_URL, queue)
    send_unsent_batches()
    second.refresh_from_db()
    assert second.send_pending == 0 and client.llen(queue) == 2
