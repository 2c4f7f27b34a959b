"""Running batch jobs: start, dispatch to the workers (with an outbox when the broker does not
answer), resume, cancel, work through claimed chunks, retry on lost connections, fail."""

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.audit.models import AuditAction, AuditChainHead, AuditObject
from closeout.audit.services import audit_record
from closeout.batches.create import CONNECTION_ERRORS, REFUSED_OUTCOMES, job_locked_for
from closeout.batches.messages import message_of, message_record
from closeout.batches.models import BatchItem, BatchJob, BatchState, ItemState
from closeout.batches.process import _finish_if_complete, _work_chunk
from closeout.core.errors import BrokerUnavailable, InvalidInput, Message, bilingual_label
from closeout.core.tasks import (
    broker_configured,
    broker_error_words,
    run_in_process,
    send_task,
)
from closeout.ops.backup import backup_before_batch

log = logging.getLogger(__name__)
# Items a worker claims at a time.
RUN_CHUNK = 2000
T = TypeVar("T")


def batch_start(
    *, actor: AbstractBaseUser, job: BatchJob, workers: int = 2, when_refused: str = "run"
) -> BatchJob:
    """Queue the run; `workers` tasks share the job's items. Their sending is recorded with the
    job and happens after commit; when the broker does not answer, the job stays queued (it is
    sent later) and BrokerUnavailable says so. Starting a job that is queued but unsent sends
    it again (a retry of a start that met no broker). A big job takes a backup first.

    Documents the preview refused: `when_refused="run"` tries them anyway, "refuse" starts
    nothing while there are any, "skip" marks them skipped and runs only the rest."""
    if job.state in (BatchState.DRAFT, BatchState.PREVIEWED) and job.created_by_id == actor.pk:
        backup_before_batch(actor=actor, batch_id=job.pk, documents=job.total)
    with transaction.atomic():
        job = job_locked_for(actor, job.pk)
        if job.state == BatchState.QUEUED and job.send_pending:
            _record_dispatch(job, workers)
        else:
            if job.state not in (BatchState.DRAFT, BatchState.PREVIEWED):
                raise InvalidInput(
                    gettext_noop("batch #%(id)s is %(state)s; it was already started"),
                    params={"id": job.pk, "state": bilingual_label(BatchState(job.state).label)},
                )
            _handle_refused(job, when_refused)
            job.state, job.started_at = BatchState.QUEUED, timezone.now()
            job.save(update_fields=["state", "started_at"])
            audit_record(
                actor=actor,
                action=AuditAction.BATCH_STARTED,
                object_type=AuditObject.BATCH,
                object_id=job.pk,
                object_repr=str(job),
                data={
                    "action": job.action,
                    "doc_type": job.doc_type,
                    "total": job.total,
                    "selection": job.selection,
                    "reason": job.reason_code,
                },
            )
            _record_dispatch(job, workers)
    job.refresh_from_db()
    batch_raise_if_unsent(job)
    return job


def _handle_refused(job: BatchJob, when_refused: str) -> None:
    """Refuse to start a run whose preview refuses documents, or skip those documents."""
    if when_refused == "run":
        return
    refused = BatchItem.objects.filter(
        job=job, state=ItemState.PENDING, predicted__in=REFUSED_OUTCOMES
    )
    count = refused.count()
    if not count:
        return
    if when_refused != "skip":
        raise InvalidInput(
            gettext_noop(
                "the preview refuses %(n)s document(s); run only the closable ones, "
                "or change the selection"
            ),
            params={"n": count},
            details={"field": "only_closable", "refused": count},
        )
    refused.update(
        state=ItemState.SKIPPED,
        outcome="skipped",
        message=F("predicted_message"),
        processed_at=timezone.now(),
    )
    BatchJob.objects.filter(pk=job.pk).update(
        skipped=F("skipped") + count, processed=F("processed") + count
    )
    job.refresh_from_db()


def _record_dispatch(job: BatchJob, workers: int) -> None:
    """In the caller's transaction: write down that `workers` tasks are to be sent (the
    outbox), and send them once it commits."""
    job.send_pending = max(1, workers)
    job.save(update_fields=["send_pending"])
    transaction.on_commit(partial(batch_dispatch, job.pk))


def batch_dispatch(job_id: int) -> bool:
    """Send the worker tasks recorded for a job, after the transaction that recorded them
    committed. Without a broker they run in this process. True when nothing is left to send;
    on a broker error the job keeps its tasks to send, with `send_error`."""
    pending = BatchJob.objects.filter(pk=job_id).values_list("send_pending", flat=True).first()
    if not pending:
        return True
    now = timezone.now()
    if not broker_configured():
        BatchJob.objects.filter(pk=job_id).update(
            send_pending=0, send_error="", send_error_message={}, send_attempted_at=now
        )
        for _ in range(pending):
            run_in_process(batch_run, job_id, name="batch_run")
        return True
    from closeout.batches.tasks import batch_work_task

    sent = 0
    try:
        for _ in range(pending):
            send_task(batch_work_task, job_id)
            sent += 1
    except Exception as exc:  # kombu's OperationalError, a refused or timed-out connection
        words = broker_error_words(exc)
        record, reason = message_record(words) or {}, words.en
        log.warning("batch #%s: %d worker task(s) not sent: %s", job_id, pending - sent, reason)
        BatchJob.objects.filter(pk=job_id).update(
            send_pending=pending - sent,
            send_error=reason[:2000],
            send_error_message=record,
            send_attempted_at=now,
        )
        return False
    BatchJob.objects.filter(pk=job_id).update(
        send_pending=0, send_error="", send_error_message={}, send_attempted_at=now
    )
    return True


def batch_dispatch_pending() -> int:
    """Send the worker tasks of every job whose start met no broker (the scheduler every minute,
    each worker as it starts). Returns how many jobs were sent."""
    sent = 0
    unsent = BatchJob.objects.filter(
        send_pending__gt=0, state__in=(BatchState.QUEUED, BatchState.RUNNING)
    )
    for job_id in unsent.order_by("pk").values_list("pk", flat=True):
        if not batch_dispatch(job_id):
            break  # the broker still does not answer: the next round tries again
        sent += 1
    return sent


def batch_raise_if_unsent(job: BatchJob) -> None:
    """After the start (or resume) committed: when its tasks could not be sent, say so. The job
    stays queued and is sent as soon as the broker answers; nothing is lost. Inside an outer
    transaction nothing was sent yet, so there is nothing to say."""
    if connection.in_atomic_block or not job.send_pending or not job.send_error:
        return
    raise BrokerUnavailable(
        gettext_noop(
            "batch #%(job)s is queued but not running yet: %(send_error)s. It starts as soon as "
            "the broker answers again (the scheduler retries every minute), or run `closeout "
            "batch resume %(job)s`"
        ),
        details={"batch": job.pk, "state": job.state, "send_error": job.send_error},
        params={"job": job.pk, "send_error": job.send_error},
    )


def batch_resume(*, actor: AbstractBaseUser, job: BatchJob, workers: int = 2) -> BatchJob:
    """After a crash, a failure or a cancel: queue workers again for the items still pending
    (and send the tasks of a job whose start met no broker)."""
    with transaction.atomic():
        job = job_locked_for(actor, job.pk)
        if job.state == BatchState.DONE:
            raise InvalidInput(
                gettext_noop("batch #%(job)s is done; nothing to resume"), params={"job": job.pk}
            )
        if job.state in (BatchState.DRAFT, BatchState.PREVIEWED):
            raise InvalidInput(
                gettext_noop("batch #%(job)s was never started"), params={"job": job.pk}
            )
        undone = job.undone_by.order_by("pk").values_list("pk", flat=True).first()
        if undone is not None:
            raise InvalidInput(
                gettext_noop("batch #%(job)s is undone by #%(undone)s; it cannot be resumed"),
                params={"job": job.pk, "undone": undone},
            )
        job.cancel_requested, job.state, job.error = False, BatchState.QUEUED, ""
        job.error_message = {}
        job.save(update_fields=["cancel_requested", "state", "error", "error_message"])
        _record_dispatch(job, workers)
    job.refresh_from_db()
    batch_raise_if_unsent(job)
    return job


def batch_cancel(*, actor: AbstractBaseUser, job: BatchJob) -> BatchJob:
    """Stop after the chunk in progress; what was done stays done (each item committed)."""
    with transaction.atomic():
        job = job_locked_for(actor, job.pk)
        if job.state in (BatchState.DONE, BatchState.CANCELLED):
            raise InvalidInput(
                gettext_noop("batch #%(id)s is already %(state)s"),
                params={"id": job.pk, "state": bilingual_label(BatchState(job.state).label)},
            )
        job.cancel_requested = True
        if job.state in (BatchState.DRAFT, BatchState.PREVIEWED):
            job.state = BatchState.CANCELLED
        job.save(update_fields=["cancel_requested", "state"])
    job.refresh_from_db()
    return job


def batch_work(job_id: int, *, chunk_size: int | None = None) -> int:
    """Process chunks of the job's pending items until none is left or a cancel is asked.
    Safe to run in several workers at once and to run again after a crash."""
    size = chunk_size or RUN_CHUNK
    done = 0
    BatchJob.objects.filter(pk=job_id, state=BatchState.QUEUED).update(state=BatchState.RUNNING)
    while True:
        job = BatchJob.objects.select_related("created_by").get(pk=job_id)
        if job.cancel_requested:
            BatchJob.objects.filter(pk=job_id).exclude(state=BatchState.DONE).update(
                state=BatchState.CANCELLED
            )
            return done
        if job.state not in (BatchState.RUNNING, BatchState.QUEUED):
            return done
        processed = _retry_when_locked(partial(_work_chunk, job, size))
        if not processed:
            break
        done += processed
    _retry_when_locked(lambda: _finish_if_complete(job_id))
    return done


def batch_run(job_id: int) -> int:
    """The in-process runner (no broker): `batch_work`, retried with backoff after a lost
    database connection (CLOSEOUT_BATCH_RETRIES times), and the job marked failed with the
    reason when the retries are spent or another error stops it. Never raises: the job row
    tells what happened."""
    retries = settings.CLOSEOUT_BATCH_RETRIES
    for attempt in range(retries + 1):
        try:
            return batch_work(job_id)
        except CONNECTION_ERRORS as exc:
            reset_connection()
            if attempt == retries:
                batch_fail(job_id, exc, retries=retries)
                return 0
            delay = retry_delay(attempt)
            batch_note_retry(job_id, exc, attempt + 1, retries, delay)
            time.sleep(delay)
        except Exception as exc:
            log.exception("batch #%s failed", job_id)
            reset_connection()
            batch_fail(job_id, exc)
            return 0
    raise AssertionError("unreachable")


def retry_delay(attempt: int) -> float:
    """Seconds before retry `attempt + 1`: exponential from CLOSEOUT_BATCH_RETRY_BACKOFF,
    at most a minute."""
    base = float(settings.CLOSEOUT_BATCH_RETRY_BACKOFF)
    return float(min(base * (2**attempt), 60.0))


def reset_connection() -> None:
    """Drop a connection that failed, so the next query opens a new one. Never inside a
    transaction (a test's, or a caller's): there the caller rolls back first."""
    if not connection.in_atomic_block:
        connection.close()


def failure_words(exc: BaseException) -> Message:
    """What stopped a run, as people read it (the batch page, in their language): what failed,
    never the exception's own text, which stays in `describe_failure` (BatchJob.error, the
    API, the CLI) and the log."""
    if isinstance(exc, CONNECTION_ERRORS):
        return Message(gettext_noop("the connection to the database was lost"))
    return Message(gettext_noop("an unexpected error stopped the run"))


def describe_failure(exc: BaseException) -> str:
    """Why a run stopped, in English with the exception's own text (for BatchJob.error, the
    API, the CLI and the log)."""
    error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500] or 'no message'}"
    if isinstance(exc, CONNECTION_ERRORS):
        return f"database connection lost ({error})"
    return error


def batch_note_retry(
    job_id: int, exc: BaseException, attempt: int, retries: int, delay: float
) -> None:
    """Record, while it retries, the error a run is retrying after (best effort: the database
    may still be away): the English text with the exception's own, the record without it."""
    record = message_of(
        gettext_noop("%(failure)s; retry %(attempt)s of %(retries)s in %(delay)s s"),
        {
            "failure": failure_words(exc),
            "attempt": attempt,
            "retries": retries,
            "delay": f"{delay:.0f}",
        },
    )
    reason = f"{describe_failure(exc)}; retry {attempt} of {retries} in {delay:.0f} s"
    try:
        BatchJob.objects.filter(
            pk=job_id, state__in=(BatchState.QUEUED, BatchState.RUNNING)
        ).update(error=reason[:2000], error_message=record, error_at=timezone.now())
    except DatabaseError:
        reset_connection()
        log.warning("batch #%s: %s (not recorded: no database)", job_id, reason)


def batch_fail(job_id: int, exc: BaseException, *, retries: int | None = None) -> None:
    """The run stopped: the job becomes failed with the reason and an audit event, unless it
    ended meanwhile (done, cancelled) or another worker finished every item. Best effort when
    the database is still away (the job then shows running until `batch resume`).
    `BatchJob.error` keeps the English text with the exception's own; the record the page reads
    says what failed and that resuming finishes the rest."""
    words, reason = failure_words(exc), describe_failure(exc)
    if retries:
        words = Message(
            gettext_noop("%(failure)s; gave up after %(retries)s retries"),
            failure=words,
            retries=retries,
        )
        reason = f"{reason}; gave up after {retries} retries"
    try:
        with transaction.atomic():
            # The audit head before the job row, in the order a chunk and a finishing worker
            # take them, so a failing worker never waits on them in a cycle.
            AuditChainHead.objects.select_for_update(no_key=True).filter(pk=1).first()
            job = BatchJob.objects.select_for_update(no_key=True).filter(pk=job_id).first()
            if job is None or job.state not in (BatchState.QUEUED, BatchState.RUNNING):
                return
            finished = not BatchItem.objects.filter(job_id=job_id, state=ItemState.PENDING).exists()
            if finished:
                # Every item was done (by this or another worker): the job is done, not failed.
                _finish_if_complete(job_id)
                return
            record = message_of(
                gettext_noop(
                    "%(reason)s. The documents done so far stay done: resume the batch to "
                    "run the rest (`closeout batch resume %(job)s`)."
                ),
                {"reason": words, "job": job_id},
            )
            reason = f"{reason}: `closeout batch resume {job_id}` finishes it"
            job.state, job.error, job.error_at = BatchState.FAILED, reason[:2000], timezone.now()
            job.error_message = record
            job.save(update_fields=["state", "error", "error_message", "error_at"])
            audit_record(
                actor=job.created_by,
                action=AuditAction.BATCH_FAILED,
                object_type=AuditObject.BATCH,
                object_id=job.pk,
                object_repr=str(job),
                data={"processed": job.processed, "total": job.total, "error": job.error},
                reason=reason[:200],
            )
    except DatabaseError:
        reset_connection()
        log.error("batch #%s failed: %s (not recorded: no database)", job_id, reason)


def _retry_when_locked(work: Callable[[], T], attempts: int = 30) -> T:
    """Run one transaction's work again when SQLite answers "database is locked" (a writer met
    another: the embedded server's request threads). The transaction rolled back whole, so
    running it again is safe."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc) or attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


__all__ = [
    "T",
    "batch_cancel",
    "batch_dispatch",
    "batch_dispatch_pending",
    "batch_fail",
    "batch_note_retry",
    "batch_raise_if_unsent",
    "batch_resume",
    "batch_run",
    "batch_start",
    "batch_work",
    "describe_failure",
    "reset_connection",
    "retry_delay",
]
