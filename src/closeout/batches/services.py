"""Batch jobs: create from a list or a saved filter, preview (changes nothing), run in chunks
(one transaction per chunk; each document all-or-nothing), with progress, cancel and resume.

Workers claim chunks of pending items with FOR UPDATE SKIP LOCKED on PostgreSQL, so several
workers share one job and never take the same item; a chunk commits with its documents, so a
crash loses nothing and a rerun closes nothing twice.

Failures stay visible and recoverable: starting or resuming records the worker tasks to send in
the job row (an outbox, in the same transaction) and sends them after commit; a broker that
does not answer leaves the job queued with `send_error` until the scheduler, a worker's start
or `batch resume` sends them. A run that loses its database connection is retried with
backoff (a chunk rolled back whole, and items are claimed by state, so running again is safe);
when the retries are spent the job becomes `failed` with the reason, and `batch resume`
finishes it."""

import json
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require, user_has_perm
from closeout.approvals.models import CloseRequest, RequestAction, RequestState
from closeout.approvals.selectors import active_routes, route_choose
from closeout.approvals.services import (
    close_request_approve,
    close_request_reject,
    close_request_submit,
)
from closeout.audit.models import AuditAction, AuditChainHead, AuditObject
from closeout.audit.services import audit_append, audit_checkpoint_write, audit_record
from closeout.batches.dimension_batch import job_dimension, predict_dimension, process_dimension
from closeout.batches.hooks import batch_finished
from closeout.batches.models import BatchAction, BatchItem, BatchJob, BatchState, ItemState
from closeout.closing.dimensions import dimension_get
from closeout.closing.models import ClosePolicy, ReasonAction, Severity
from closeout.closing.policies import policy_for
from closeout.closing.selectors import (
    DocumentVerdict,
    QueueFilter,
    document_queue,
    released_value_for,
    verdicts_for,
)
from closeout.closing.services import (
    close_documents_bulk,
    close_guard,
    close_period_check,
    document_reopen,
    named,
    reason_get,
    remark_check,
)
from closeout.closing.transitions import ids_param
from closeout.core.errors import (
    Bilingual,
    BrokerUnavailable,
    CompanyAmbiguous,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    bilingual_label,
)
from closeout.core.metrics import observe_batch_finished
from closeout.core.tasks import (
    broker_configured,
    describe_broker_error,
    run_in_process,
    send_task,
)
from closeout.documents.models import CloseKind, CloseState, Document
from closeout.documents.types import spec_for
from closeout.ops.backup import backup_before_batch

log = logging.getLogger(__name__)

CREATE_CHUNK = 5000
RUN_CHUNK = 2000
# What a lost or broken database connection raises: safe to retry a chunk after it.
CONNECTION_ERRORS = (OperationalError, InterfaceError)
T = TypeVar("T")
DOCUMENT_ACTIONS = (BatchAction.CLOSE, BatchAction.REOPEN, BatchAction.REQUEST)


# --- creation ------------------------------------------------------------------------------


# The permission a batch acts with: its documents are those the creator holds it over.
BATCH_PERMS = {
    BatchAction.CLOSE: Perm.CLOSE_DIRECT,
    BatchAction.REQUEST: Perm.CLOSE_REQUEST,
    BatchAction.REOPEN: Perm.REOPEN_APPROVE,
}
REQUEST_PERMS = {RequestAction.CLOSE: Perm.CLOSE_APPROVE, RequestAction.REOPEN: Perm.REOPEN_APPROVE}


def _unambiguous(doc_type: str, rows: Iterable[tuple[str, int, str]]) -> dict[str, int]:
    """number -> id; a number the caller sees in several companies is refused, naming them."""
    found: dict[str, int] = {}
    companies: dict[str, list[str]] = defaultdict(list)
    for number, pk, company in rows:
        found[number] = pk
        companies[number].append(company)
    for number, codes in companies.items():
        if len(codes) > 1:
            raise CompanyAmbiguous(
                f"{doc_type} {number} exists in several companies ({', '.join(sorted(codes))}): "
                "make one batch per company",
                details={"field": "numbers", "number": number, "companies": sorted(codes)},
            )
    return found


def _document_ids(
    doc_type: str,
    numbers: list[str] | None,
    queue_filter: dict[str, Any] | None,
    scope: Q = Q(),  # noqa: B008 (an immutable condition)
) -> Iterator[tuple[int, str]]:
    """(id, number) of the selected documents within `scope`; a number outside the scope is
    answered exactly like a number that does not exist."""
    if numbers is not None:
        wanted = list(dict.fromkeys(n.strip() for n in numbers if n.strip()))
        if not wanted:
            raise InvalidInput(
                "the list of document numbers is empty", details={"field": "numbers"}
            )
        found: dict[str, int] = {}
        for start in range(0, len(wanted), 1000):
            part = wanted[start : start + 1000]
            rows = Document.objects.filter(scope, doc_type=doc_type, number__in=part)
            found.update(
                _unambiguous(doc_type, rows.values_list("number", "pk", "company__unit__code"))
            )
        missing = [n for n in wanted if n not in found]
        if missing:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            raise InvalidInput(
                f"no {doc_type} numbered {shown}",
                details={"field": "numbers", "missing": missing[:100]},
            )
        yield from ((found[n], n) for n in wanted)
        return
    if queue_filter is None:
        raise InvalidInput(
            "a batch needs a list of numbers or a filter", details={"field": "numbers"}
        )
    selection = QueueFilter.from_dict({**queue_filter, "doc_type": doc_type})
    yield from (
        document_queue(selection)
        .filter(scope)
        .order_by("pk")
        .values_list("pk", "number")
        .iterator(chunk_size=CREATE_CHUNK)
    )


@transaction.atomic
def batch_create(
    *,
    actor: AbstractBaseUser,
    action: str,
    doc_type: str = "",
    numbers: list[str] | None = None,
    queue_filter: dict[str, Any] | None = None,
    request_ids: list[int] | None = None,
    reason_code: str = "",
    remark: str = "",
    close_date: date | None = None,
    comment: str = "",
    company: str = "",
    dimension: str = "",
) -> BatchJob:
    """A batch job from an explicit list or a saved queue filter; nothing changes yet. With
    `company` (a company code) only that company's documents are taken. A close batch may name
    a close dimension (关闭维度): it then closes that dimension of the lines."""
    require(actor, Perm.BATCH_RUN, what="batch jobs")
    if action == BatchAction.IMPORT:
        raise InvalidInput(
            "an import batch is created by executing an uploaded file (closeout import run)",
            details={"field": "action"},
        )
    if action not in BatchAction.values:
        raise InvalidInput(
            f"unknown batch action '{action}'; use one of: " + ", ".join(BatchAction.values),
            details={"field": "action"},
        )
    if action in DOCUMENT_ACTIONS:
        spec_for(doc_type)
        reason_get(
            reason_code, ReasonAction.REOPEN if action == BatchAction.REOPEN else ReasonAction.CLOSE
        )
    remark_check(remark)
    remark_check(comment, field="comment")
    if dimension:
        if action != BatchAction.CLOSE:
            raise InvalidInput(
                "only a close batch takes a close dimension", details={"field": "dimension"}
            )
        dimension_get(doc_type, dimension)
    if action == BatchAction.REJECT and not comment.strip():
        raise InvalidInput(
            gettext_noop("a batch rejection needs a comment"),
            params={},
            details={"field": "comment"},
        )
    if queue_filter is not None:
        # Checked before it is stored with the job (PostgreSQL refuses a NUL in JSON).
        QueueFilter.from_dict({**queue_filter, "doc_type": doc_type})
    job = BatchJob.objects.create(
        action=action,
        doc_type=doc_type if action in DOCUMENT_ACTIONS else "",
        selection=(
            {"numbers": numbers}
            if numbers is not None
            else {"filter": queue_filter}
            if queue_filter is not None
            else {"requests": request_ids}
        )
        | ({"dimension": dimension} if dimension else {}),
        reason_code=reason_code,
        remark=remark,
        close_date=close_date,
        comment=comment,
        created_by_id=actor.pk,
    )
    items: list[BatchItem] = []
    total = 0

    def flush() -> None:
        nonlocal items, total
        BatchItem.objects.bulk_create(items, batch_size=CREATE_CHUNK)
        total += len(items)
        items = []

    if action in DOCUMENT_ACTIONS:
        scope = documents_visible_to(actor, BATCH_PERMS[BatchAction(action)])
        if company:
            scope &= Q(company__unit__code=company)
        for pk, number in _document_ids(doc_type, numbers, queue_filter, scope):
            items.append(BatchItem(job=job, document_id=pk, label=number))
            if len(items) >= CREATE_CHUNK:
                flush()
    else:
        ids = list(dict.fromkeys(request_ids or []))
        if not ids:
            raise InvalidInput("a batch approval needs request ids", details={"field": "requests"})
        known = _requests_in_scope(actor, ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise InvalidInput(f"no close request #{missing[0]}", details={"field": "requests"})
        items = [BatchItem(job=job, request_id=i, label=f"#{i}") for i in ids]
    flush()
    if total == 0:
        raise InvalidInput(
            gettext_noop("the selection matches no document"),
            params={},
            details={"field": "filter"},
        )
    job.total = total
    job.save(update_fields=["total"])
    return job


def _requests_in_scope(actor: AbstractBaseUser, ids: list[int]) -> set[int]:
    """The ids among `ids` of requests whose document the actor holds the deciding permission
    over (close.approve or reopen.approve); the others are answered as missing."""
    known: set[int] = set()
    for action, perm in REQUEST_PERMS.items():
        scope = documents_visible_to(actor, perm)
        known |= set(
            CloseRequest.objects.filter(
                pk__in=ids, action=action, document__in=Document.objects.filter(scope)
            ).values_list("pk", flat=True)
        )
    return known


def _job_for(actor: AbstractBaseUser, job_id: int) -> BatchJob:
    job = BatchJob.objects.select_for_update(no_key=True).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"no batch job #{job_id}")
    if job.created_by_id != actor.pk:
        require(actor, Perm.BATCH_RUN, what=f"batch #{job_id}")
        raise PermissionDenied(
            f"batch #{job_id} belongs to another user", details={"rule": "owner_only"}
        )
    return job


# --- preview -------------------------------------------------------------------------------


class _Chunk:
    """What deciding many documents asks again and again, asked once per chunk: the user's
    permission per organisation unit and type, the policy per unit, the approval routes."""

    def __init__(self, user: AbstractBaseUser, perm: str) -> None:
        self.user, self.perm = user, perm
        self.allowed: dict[tuple[int, str], bool] = {}
        self.policies: dict[tuple[int, str], ClosePolicy] = {}
        self.routes = active_routes(RequestAction.CLOSE)
        self.period_refusals: dict[tuple[date, int], str] = {}

    def period_refusal(self, day: date, company_id: int) -> str:
        """Why a close dated `day` is refused by a closed accounting period of the company
        ("" if it is not)."""
        key = (day, company_id)
        if key not in self.period_refusals:
            try:
                close_period_check(day, field="close_date", company_id=company_id)
                self.period_refusals[key] = ""
            except DomainError as refusal:
                self.period_refusals[key] = refusal.message
        return self.period_refusals[key]

    def allows(self, document: Document) -> bool:
        key = (document.org_unit_id, document.doc_type)
        if key not in self.allowed:
            self.allowed[key] = user_has_perm(
                self.user, self.perm, org_unit=document.org_unit, doc_type=document.doc_type
            )
        return self.allowed[key]

    def policy(self, document: Document) -> ClosePolicy:
        key = (document.org_unit_id, document.doc_type)
        if key not in self.policies:
            self.policies[key] = policy_for(document.doc_type, document.org_unit)
        return self.policies[key]


def _close_outcome(
    job: BatchJob,
    document: Document,
    verdict: DocumentVerdict | None,
    open_value: Decimal,
    chunk: _Chunk,
    *,
    remark: str | None = None,
    action: str | None = None,
    close_date: date | None = None,
) -> tuple[str, str]:
    """(predicted outcome, message) for closing one document: would_close, needs_approval or
    refused — the same guards as a manual close. An imported row passes its own remark and
    action instead of the job's."""
    outcome, words = _close_outcome_words(
        job,
        document,
        verdict,
        open_value,
        chunk,
        remark=remark,
        action=action,
        close_date=close_date,
    )
    return ("refused" if outcome == "needs_remark" else outcome), words.en


def _failing_rules(verdict: DocumentVerdict, severity: str) -> dict[str, object]:
    """The rules of one severity a document fails, by code, named in both languages."""
    return {
        rule.code: Bilingual(f"{rule.code}: {rule.label_en}", rule.label_zh)
        for rule, failing in verdict.failing
        if failing == severity
    }


def _words(msgid: str, **params: object) -> Bilingual:
    """A preview message in English and Chinese (a batch's owner reads it in either)."""
    error = DomainError(msgid, params=params)
    return Bilingual(error.message, str(error.details["message_zh"]))


def _close_outcome_words(
    job: BatchJob,
    document: Document,
    verdict: DocumentVerdict | None,
    open_value: Decimal,
    chunk: _Chunk,
    *,
    remark: str | None = None,
    action: str | None = None,
    close_date: date | None = None,
) -> tuple[str, Bilingual]:
    """_close_outcome with its message in both languages, and needs_remark told apart from
    the other refusals."""
    remark = job.remark if remark is None else remark
    action = job.action if action is None else action
    if document.close_state != CloseState.OPEN:
        return "skipped", _words(
            gettext_noop("%(document)s is %(state)s"),
            document=named(document),
            state=bilingual_label(document.get_close_state_display()),
        )
    if not chunk.allows(document):
        return "refused", _words(
            gettext_noop("%(user)s lacks '%(perm)s' for %(document)s"),
            user=job.created_by.get_username(),
            perm=chunk.perm,
            document=named(document),
        )
    in_closed_period = chunk.period_refusal(
        close_date or job.close_date or timezone.localdate(), document.company_id
    )
    if in_closed_period:
        return "refused", _words(
            gettext_noop("%(document)s: %(why)s"),
            document=named(document),
            why=in_closed_period,
        )
    assert verdict is not None  # noqa: S101 (every open document has a verdict)
    try:
        close_guard(
            named(document),
            blocking=_failing_rules(verdict, Severity.BLOCKING),
            exceptions=_failing_rules(verdict, Severity.EXCEPTION),
            remark=remark,
        )
    except DomainError as refusal:
        # The close would need a remark (closing.services.remark_required): not a refusal of
        # the document, a field the batch left empty.
        outcome = "needs_remark" if refusal.details.get("field") == "remark" else "refused"
        return outcome, Bilingual(
            refusal.message, str(refusal.details.get("message_zh", refusal.message))
        )
    exception = bool(verdict.codes(Severity.EXCEPTION))
    route = route_choose(
        document=document,
        action=RequestAction.CLOSE,
        exception=exception,
        open_value=open_value,
        routes=chunk.routes,
    )
    needs_approval = chunk.policy(document).direct_close_needs_approval
    if route is not None or needs_approval or action == BatchAction.REQUEST:
        if route is not None:
            route_words = _words(gettext_noop("approval route: %(name)s"), name=route.name)
            return "needs_approval", route_words
        return "needs_approval", _words(gettext_noop("approval route: policy"))
    return "would_close", Bilingual("", "")


def _chunks(qs: QuerySet[BatchItem], size: int) -> Iterator[list[BatchItem]]:
    last = 0
    while True:
        chunk = list(qs.filter(pk__gt=last).order_by("pk")[:size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def batch_preview(*, actor: AbstractBaseUser, job: BatchJob, chunk_size: int = 2000) -> BatchJob:
    """Predict each item's outcome; changes no document."""
    with transaction.atomic():
        job = _job_for(actor, job.pk)
        if job.state not in (BatchState.DRAFT, BatchState.PREVIEWED):
            raise InvalidInput(f"batch #{job.pk} is {job.state}; only a draft can be previewed")
        if job.action == BatchAction.IMPORT:
            raise InvalidInput(
                f"batch #{job.pk} runs an imported file, whose rows were checked when it was "
                "validated; it has no separate preview"
            )
    counts: dict[str, int] = {}
    released = Decimal(0)
    items = BatchItem.objects.filter(job=job).select_related(
        "document", "document__org_unit", "request"
    )
    for chunk in _chunks(items, chunk_size):
        predictions = _predict(job, chunk)
        for item, (outcome, message, value) in zip(chunk, predictions, strict=True):
            item.predicted, item.predicted_message = outcome, _in_english(message)[:2000]
            if isinstance(message, Bilingual) and message.zh != message.en:
                # The page shows the owner's language; the API and the CSV keep English.
                item.params = {**item.params, "predicted_message_zh": message.zh[:2000]}
            counts[outcome] = counts.get(outcome, 0) + 1
            released += value
        items_save(chunk, ["predicted", "predicted_message", "params"])
    BatchJob.objects.filter(pk=job.pk).update(
        predicted=counts, predicted_released_value=released, state=BatchState.PREVIEWED
    )
    job.refresh_from_db()
    return job


def _in_english(message: object) -> str:
    return message.en if isinstance(message, Bilingual) else str(message)


def _predict(job: BatchJob, chunk: list[BatchItem]) -> Sequence[tuple[str, object, Decimal]]:
    if job_dimension(job):
        return predict_dimension(job, chunk)
    if job.action == BatchAction.UNDO:
        from closeout.batches.undo import predict_undo, restored_value

        return [
            (
                outcome,
                message,
                restored_value(item) if outcome.startswith(("would", "needs")) else Decimal(0),
            )
            for item, (outcome, message) in zip(chunk, predict_undo(job, chunk), strict=True)
        ]
    if job.action in (BatchAction.CLOSE, BatchAction.REQUEST):
        ids = [i.document_id for i in chunk if i.document_id]
        verdicts = verdicts_for(ids, doc_type=job.doc_type)
        values = released_value_for(ids, doc_type=job.doc_type)
        perm = Perm.CLOSE_REQUEST if job.action == BatchAction.REQUEST else Perm.CLOSE_DIRECT
        permissions = _Chunk(job.created_by, perm)
        result: list[tuple[str, object, Decimal]] = []
        for item in chunk:
            assert item.document is not None  # noqa: S101
            value = values.get(item.document.pk, Decimal(0))
            outcome, words = _close_outcome_words(
                job, item.document, verdicts.get(item.document.pk), value, permissions
            )
            refused = outcome in REFUSED_OUTCOMES
            result.append((outcome, words, Decimal(0) if refused else value))
        return result
    if job.action == BatchAction.REOPEN:
        permissions = _Chunk(job.created_by, Perm.REOPEN_APPROVE)
        result = []
        for item in chunk:
            assert item.document is not None  # noqa: S101
            doc = item.document
            if doc.close_state != CloseState.CLOSED:
                result.append(("skipped", f"{doc.label} is {doc.close_state}", Decimal(0)))
            elif not permissions.allows(doc):
                result.append(("refused", f"lacks 'reopen.approve' for {doc.label}", Decimal(0)))
            else:
                result.append(("would_reopen", "", Decimal(0)))
        return result
    result = []
    for item in chunk:
        assert item.request is not None  # noqa: S101
        request = item.request
        if request.state != RequestState.PENDING:
            result.append(("skipped", f"request #{request.pk} is {request.state}", Decimal(0)))
        elif request.requester_id == job.created_by_id:
            result.append(("refused", "separation of duties: your own request", Decimal(0)))
        else:
            result.append((f"would_{job.action}", "", Decimal(0)))
    return result


# --- running -------------------------------------------------------------------------------


REFUSED_OUTCOMES = ("refused", "needs_remark")


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
        job = _job_for(actor, job.pk)
        if job.state == BatchState.QUEUED and job.send_pending:
            _record_dispatch(job, workers)
        else:
            if job.state not in (BatchState.DRAFT, BatchState.PREVIEWED):
                raise InvalidInput(
                    gettext_noop("batch #%(id)s is %(state)s; it was already started"),
                    params={"id": job.pk, "state": bilingual_label(job.get_state_display())},
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
            send_pending=0, send_error="", send_attempted_at=now
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
        reason = describe_broker_error(exc)
        log.warning("batch #%s: %d worker task(s) not sent: %s", job_id, pending - sent, reason)
        BatchJob.objects.filter(pk=job_id).update(
            send_pending=pending - sent, send_error=reason[:2000], send_attempted_at=now
        )
        return False
    BatchJob.objects.filter(pk=job_id).update(send_pending=0, send_error="", send_attempted_at=now)
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
        f"batch #{job.pk} is queued but not running yet: {job.send_error}. It starts as soon "
        f"as the broker answers again (the scheduler retries every minute), or run "
        f"`closeout batch resume {job.pk}`",
        details={"batch": job.pk, "state": job.state, "send_error": job.send_error},
    )


def batch_resume(*, actor: AbstractBaseUser, job: BatchJob, workers: int = 2) -> BatchJob:
    """After a crash, a failure or a cancel: queue workers again for the items still pending
    (and send the tasks of a job whose start met no broker)."""
    with transaction.atomic():
        job = _job_for(actor, job.pk)
        if job.state == BatchState.DONE:
            raise InvalidInput(f"batch #{job.pk} is done; nothing to resume")
        if job.state in (BatchState.DRAFT, BatchState.PREVIEWED):
            raise InvalidInput(f"batch #{job.pk} was never started")
        undone = job.undone_by.order_by("pk").values_list("pk", flat=True).first()
        if undone is not None:
            raise InvalidInput(f"batch #{job.pk} is undone by #{undone}; it cannot be resumed")
        job.cancel_requested, job.state, job.error = False, BatchState.QUEUED, ""
        job.save(update_fields=["cancel_requested", "state", "error"])
        _record_dispatch(job, workers)
    job.refresh_from_db()
    batch_raise_if_unsent(job)
    return job


def batch_cancel(*, actor: AbstractBaseUser, job: BatchJob) -> BatchJob:
    """Stop after the chunk in progress; what was done stays done (each item committed)."""
    with transaction.atomic():
        job = _job_for(actor, job.pk)
        if job.state in (BatchState.DONE, BatchState.CANCELLED):
            raise InvalidInput(
                gettext_noop("batch #%(id)s is already %(state)s"),
                params={"id": job.pk, "state": bilingual_label(job.get_state_display())},
            )
        job.cancel_requested = True
        if job.state in (BatchState.DRAFT, BatchState.PREVIEWED):
            job.state = BatchState.CANCELLED
        job.save(update_fields=["cancel_requested", "state"])
    job.refresh_from_db()
    return job


def _claim(job_id: int, size: int) -> list[BatchItem]:
    qs = BatchItem.objects.filter(job_id=job_id, state=ItemState.PENDING).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",), no_key=True)
    return list(qs.select_related("document", "document__org_unit", "request")[:size])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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


def describe_failure(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:500] or "no message"
    if isinstance(exc, CONNECTION_ERRORS):
        return f"database connection lost ({type(exc).__name__}: {text})"
    return f"{type(exc).__name__}: {text}"


def batch_note_retry(
    job_id: int, exc: BaseException, attempt: int, retries: int, delay: float
) -> None:
    """Record, while it retries, the error a run is retrying after (best effort: the database
    may still be away)."""
    reason = f"{describe_failure(exc)}; retry {attempt} of {retries} in {delay:.0f} s"
    try:
        BatchJob.objects.filter(
            pk=job_id, state__in=(BatchState.QUEUED, BatchState.RUNNING)
        ).update(error=reason[:2000], error_at=timezone.now())
    except DatabaseError:
        reset_connection()
        log.warning("batch #%s: %s (not recorded: no database)", job_id, reason)


def batch_fail(job_id: int, exc: BaseException, *, retries: int | None = None) -> None:
    """The run stopped: the job becomes failed with the reason and an audit event, unless it
    ended meanwhile (done, cancelled) or another worker finished every item. Best effort when
    the database is still away (the job then shows running until `batch resume`)."""
    reason = describe_failure(exc)
    if retries:
        reason += f"; gave up after {retries} retries"
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
            reason += f": `closeout batch resume {job_id}` finishes it"
            job.state, job.error, job.error_at = BatchState.FAILED, reason[:2000], timezone.now()
            job.save(update_fields=["state", "error", "error_at"])
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


def _work_chunk(job: BatchJob, chunk_size: int) -> int:
    with transaction.atomic():
        items = _claim(job.pk, chunk_size)
        if not items:
            return 0
        _process(job, items)
        name, now = worker_name(), timezone.now()
        for item in items:
            item.worker, item.processed_at = name, now
        items_save(items, ["state", "outcome", "message", "processed_at", "worker"])
        tally = {s: sum(1 for i in items if i.state == s) for s in ItemState.values}
        BatchJob.objects.filter(pk=job.pk).update(
            processed=F("processed") + len(items),
            succeeded=F("succeeded") + tally[ItemState.DONE],
            failed=F("failed") + tally[ItemState.FAILED],
            skipped=F("skipped") + tally[ItemState.SKIPPED],
        )
        return len(items)


def items_save(items: list[BatchItem], fields: list[str]) -> None:
    """Store the given fields of many items: one UPDATE per distinct set of values (a chunk's
    items mostly share their outcome), `bulk_update` for the few that stand alone — its
    CASE per field and item costs more to build than the write."""
    groups: dict[tuple[Any, ...], list[BatchItem]] = {}
    for item in items:
        key = tuple(_value_key(getattr(item, f)) for f in fields)
        groups.setdefault(key, []).append(item)
    alone = [members[0] for members in groups.values() if len(members) == 1]
    for members in groups.values():
        if len(members) > 1:
            BatchItem.objects.filter(pk__in=ids_param([m.pk for m in members])).update(
                **{f: getattr(members[0], f) for f in fields}
            )
    if alone:
        BatchItem.objects.bulk_update(alone, fields)


def _value_key(value: Any) -> Any:
    """A field value as a dictionary key (JSON parameters by their text)."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _finish_if_complete(job_id: int) -> None:
    with transaction.atomic():
        # The audit head before the job row: a chunk takes them in that order too (its audit
        # events, then its counters), so a finishing worker never waits on a working one in a
        # cycle.
        AuditChainHead.objects.select_for_update(no_key=True).filter(pk=1).first()
        job = BatchJob.objects.select_for_update(no_key=True).get(pk=job_id)
        pending = BatchItem.objects.filter(job_id=job_id, state=ItemState.PENDING).exists()
        if pending or job.state == BatchState.DONE:
            return
        job.state, job.finished_at, job.error = BatchState.DONE, timezone.now(), ""
        job.save(update_fields=["state", "finished_at", "error"])
        audit_record(
            actor=job.created_by,
            action=AuditAction.BATCH_FINISHED,
            object_type=AuditObject.BATCH,
            object_id=job.pk,
            object_repr=str(job),
            data={
                "processed": job.processed,
                "succeeded": job.succeeded,
                "failed": job.failed,
                "skipped": job.skipped,
            },
        )
        # Post-close verification (S16) and whatever else other apps registered.
        batch_finished(job.pk)
        transaction.on_commit(partial(observe_batch_finished, job))
        # The chain's head after the batch, sealed outside the database (a failure is logged).
        transaction.on_commit(audit_checkpoint_write, robust=True)


def _mark(item: BatchItem, state: str, outcome: str, message: str = "") -> None:
    item.state, item.outcome, item.message = state, outcome, message[:2000]
    item.processed_at = timezone.now()


def _doc(item: BatchItem) -> Document:
    if item.document is None:
        raise InvalidInput(f"batch item {item.pk} has no document")
    return item.document


def _req(item: BatchItem) -> CloseRequest:
    if item.request is None:
        raise InvalidInput(f"batch item {item.pk} has no request")
    return item.request


def _process(job: BatchJob, items: list[BatchItem]) -> None:
    if job_dimension(job):
        process_dimension(job, items)
        return
    if job.action == BatchAction.CLOSE:
        _process_close(job, items)
        return
    if job.action == BatchAction.IMPORT:
        from closeout.batches.import_run import process_import_items

        process_import_items(job, items)
        return
    if job.action == BatchAction.UNDO:
        from closeout.batches.undo import process_undo_items

        process_undo_items(job, items)
        return
    actor = job.created_by
    lock_documents(items)
    steps: dict[str, Callable[[BatchItem], object]] = {
        BatchAction.REOPEN: lambda i: document_reopen(
            actor=actor, document=_doc(i), reason_code=job.reason_code, remark=job.remark
        ),
        BatchAction.REQUEST: lambda i: close_request_submit(
            actor=actor,
            document=_doc(i),
            reason_code=job.reason_code,
            remark=job.remark,
            close_date=job.close_date,
        ),
        BatchAction.APPROVE: lambda i: close_request_approve(
            actor=actor, request=_req(i), comment=job.comment
        ),
        BatchAction.REJECT: lambda i: close_request_reject(
            actor=actor, request=_req(i), comment=job.comment
        ),
    }
    for item in items:
        try:
            with transaction.atomic():  # a savepoint: each item all-or-nothing
                steps[job.action](item)
            _mark(item, ItemState.DONE, str(job.action))
        except DomainError as error:
            _mark(item, ItemState.FAILED, "refused", error.message)


def lock_documents(items: list[BatchItem]) -> dict[int, Document]:
    """The items' documents (or their requests' documents), locked in id order before any of
    them is changed: every chunk and every single-document writer then takes document locks in
    one global order, so two of them never wait on each other in a cycle."""
    ids = sorted(
        {i.document_id or (i.request.document_id if i.request else 0) for i in items} - {0}
    )
    return {
        d.pk: d
        for d in Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit")
        .filter(pk__in=ids)
        .order_by("pk")
    }


def _process_close(job: BatchJob, items: list[BatchItem]) -> None:
    """Close directly what may close, in bulk; submit requests where an approval route
    applies; refuse the rest with the reason. The documents are locked first."""
    documents = lock_documents(items)
    open_ids = [pk for pk, d in documents.items() if d.close_state == CloseState.OPEN]
    verdicts = verdicts_for(open_ids, doc_type=job.doc_type)
    values = released_value_for(open_ids, doc_type=job.doc_type)
    permissions = _Chunk(job.created_by, Perm.CLOSE_DIRECT)
    ready: list[BatchItem] = []
    requested: list[BatchItem] = []
    for item in items:
        document = documents[item.document_id]  # type: ignore[index]
        outcome, message = _close_outcome(
            job,
            document,
            verdicts.get(document.pk),
            values.get(document.pk, Decimal(0)),
            permissions,
        )
        if outcome == "would_close":
            ready.append(item)
        elif outcome == "needs_approval":
            try:
                with transaction.atomic():
                    item.request = close_request_submit(
                        actor=job.created_by,
                        document=document,
                        reason_code=job.reason_code,
                        remark=job.remark,
                        close_date=job.close_date,
                    )
                requested.append(item)
                if item.request.state == RequestState.EXECUTED:
                    # No route applied when it was submitted: it closed at once (an undo of
                    # the batch finds it by its request).
                    message = (
                        f"close request #{item.request.pk}: no approval route applied, "
                        "closed at once"
                    )
                _mark(item, ItemState.DONE, "requested", message)
            except DomainError as error:
                _mark(item, ItemState.FAILED, "refused", error.message)
        elif outcome == "skipped":
            _mark(item, ItemState.SKIPPED, "skipped", message)
        else:
            _mark(item, ItemState.FAILED, "refused", message)
    if requested:
        BatchItem.objects.bulk_update(requested, ["request"])
    if not ready:
        return
    now = timezone.now()
    entries = close_documents_bulk(
        document_ids=[i.document_id for i in ready if i.document_id],
        doc_type=job.doc_type,
        kind=CloseKind.MANUAL,
        reason=job.reason_code,
        now=now,
        actor=job.created_by,
        remark=job.remark,
        close_date=job.close_date or timezone.localdate(now),
    )
    for entry in entries:
        entry.request_id = f"batch:{job.pk}"
    audit_append(actor=job.created_by, entries=entries, at=now)
    for item in ready:
        _mark(item, ItemState.DONE, "closed")


__all__ = [
    "batch_cancel",
    "batch_create",
    "batch_dispatch",
    "batch_dispatch_pending",
    "batch_fail",
    "batch_preview",
    "batch_resume",
    "batch_run",
    "batch_start",
    "batch_work",
]
