"""Batch undo (批量撤销): a batch job that reopens exactly what another batch closed.

`batch_undo_create` makes the undo job: a batch of action `undo` linked to the batch it undoes
(`undoes`), previewed, run, followed and verified like every batch. Its items are the documents
the undone batch closed, found in the audit trail: the close events the batch wrote carry
`request_id = "batch:<id>"` (batch closes and the close rows of an import), and those of the
close requests the batch submitted that executed at once (no approval route applied: the
close event carries the request's id, the batch item links the request).

A close that left the header open (the batch closed lines only, 行结案) is undone by reopening
those lines: the lines of the document's last close (`closing.services.execute_lines_reopen`),
under the same rules as a document's reopen (scope, changes since, closed period; where a
reopen approval route applies the undo refuses, since lines have no reopen request of their
own). An import naming a document in several rows closed lines in each row: every row's
lines reopen (not only the last close's). A close of one dimension (关闭维度: a dimension
batch, or an import row naming a dimension; their events are tagged `batch:<id>` too) is
undone by reopening that dimension on the lines the batch closed it on
(`closing.dimension_undo.execute_dimensions_undo`), which gives back exactly the on-order
quantity it released; lines whose last dimension the batch closed (so they closed as a whole,
and the header with its last line) reopen first through the reopen path above, keeping their
other dimensions closed as before the batch.

Each document goes through the reopen route, under its row lock, in this order:

1. Outside the actor's scope (no `reopen.approve`, or not the permission the undone batch
   needed, over the document's unit and type): skipped, the item says only that a document
   lay outside the scope (no number, no link).
2. Changed after the batch: skipped, with the reason. Every write to a document is audited, so
   "changed" is decided from the audit trail and the document's facts, never guessed: the
   document is unchanged exactly when no audit event that records a write (`CHANGES`: anything
   but refusals, exports, verifications and attachments) follows the batch's close event of
   it, and no business event was received for it since. The reason given is, in this order:
   archived, on hold, a reopen request pending, reopened (open again), reopened and closed
   again, new business events, any other change (the audit event named).
3. Closed in a closed accounting period: refused with that reason (the undo reopens nothing
   there; a reopen request takes the finance route).
4. A reopen approval route applies: a reopen request is submitted (the approvers decide; the
   undo's creator cannot approve it: separation of duties as for every request); for a
   line-only close, refused with that reason.
5. Otherwise a direct reopen (`closing.services.execute_reopen`, or `execute_lines_reopen` for a
   line-only close): the lines the batch's close closed reopen and give back exactly what they
   released; quarantined events then apply. A chunk's plain header closes and dimension closes
   (no quarantined events, nothing but the header's last close or the dimensions) reopen
   set-based (`closing.services.execute_reopen_bulk`,
   `closing.dimension_undo.execute_dimensions_undo_bulk`, one audit event per document
   and dimension), decided by the same guards under the chunk's locks.

A batch is undone at most once (a second undo is refused, naming the first); an undo cannot be
undone (close the documents again with a new batch); a batch still queued or running, or never
run, cannot be undone, and once undone it cannot be resumed.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require
from closeout.approvals.models import CloseRequest, RequestAction
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.services import audit_record
from closeout.batches.models import BatchAction, BatchItem, BatchJob, BatchState, ItemState
from closeout.batches.services import job_locked_for
from closeout.closing.models import ReasonAction
from closeout.closing.reasons import reason_get
from closeout.closing.states import STATE_LABELS
from closeout.core.errors import InvalidInput, code_words
from closeout.documents.models import CloseState, Document, Line

DEFAULT_REASON = "wrong_close"
CREATE_CHUNK = 5000
CLOSE_ACTIONS = (
    AuditAction.DOCUMENT_CLOSED,
    AuditAction.LINES_CLOSED,
    AuditAction.LINE_DIMENSIONS_CLOSED,
)
# Audit events on a document that record no write to it.
NOT_CHANGES = (
    AuditAction.DOCUMENT_CHANGE_REFUSED,
    AuditAction.ARCHIVE_PACK_EXPORTED,
    AuditAction.DATA_EXPORTED,
    AuditAction.POST_CLOSE_VERIFIED,
    AuditAction.DIAGNOSTICS_RUN,
    AuditAction.ATTACHMENT_ADDED,
)
EVENT_ACTIONS = (
    AuditAction.EVENT_APPLIED,
    AuditAction.EVENT_PENDING,
    AuditAction.EVENT_CONFIRMED,
    AuditAction.EVENT_QUARANTINED,
    AuditAction.EVENT_RELEASED_FROM_QUARANTINE,
)
# The permission the undone batch needed over each document, besides batch.run.
ORIGINAL_PERMS = {BatchAction.CLOSE: Perm.CLOSE_DIRECT, BatchAction.IMPORT: Perm.CLOSE_DIRECT}
UNDOABLE_STATES = (BatchState.DONE, BatchState.CANCELLED, BatchState.FAILED)

# Why an item is skipped or refused: one gettext msgid per reason (zh-hans and en).
REASONS = {
    "outside_scope": gettext_noop("a document outside your scope: not undone"),
    "archived": gettext_noop("%(document)s was archived after the batch"),
    "on_hold": gettext_noop("%(document)s was put on hold after the batch"),
    "reopen_pending": gettext_noop("%(document)s has a reopen request pending since the batch"),
    "reopened": gettext_noop("%(document)s was reopened after the batch (it is now %(state)s)"),
    "reclosed": gettext_noop("%(document)s was reopened and closed again after the batch"),
    "new_events": gettext_noop("%(document)s holds new business events since the batch"),
    "changed": gettext_noop("%(document)s changed after the batch (audit event #%(seq)s)"),
    "lines_route": gettext_noop(
        "the batch closed only some lines of %(document)s and a reopen approval route applies "
        "to it: lines have no reopen request of their own, so the undo does not reopen them"
    ),
    "closed_period": gettext_noop(
        "%(document)s was closed on %(date)s, in a closed accounting period: the undo does not "
        "reopen it (a reopen request takes the finance route)"
    ),
    "no_permission": gettext_noop("%(user)s lacks '%(perm)s' for %(document)s"),
}


def undo_message(code: str, args: dict[str, Any]) -> str:
    """The reason `code` in the active language."""
    params = dict(args)
    if "state" in params:
        params["state"] = str(STATE_LABELS.get(params["state"], params["state"]))
    return gettext(REASONS[code]) % params


def undo_message_english(code: str, args: dict[str, Any]) -> str:
    with translation.override("en"):
        return undo_message(code, args)


def is_undo_item(item: BatchItem) -> bool:
    """An item whose reason an undo recorded as a code (rendered in the reader's language)."""
    return bool(item.params) and item.params.get("reason") in REASONS


def item_messages(item: BatchItem) -> tuple[str, str]:
    """(message, predicted message) of a batch item in the active language: an undo item's
    reason is rendered from its code; other items' messages are shown as stored."""
    reason = item.params.get("reason") if item.params else None
    if reason not in REASONS:
        return item.message, item.predicted_message
    text = undo_message(str(reason), item.params.get("args", {}))
    done = item.state != ItemState.PENDING
    return (text if done else item.message), (text if not done else item.predicted_message)


def undone_by(job: BatchJob) -> BatchJob | None:
    """The undo job of `job` (a cancelled draft does not count), if any."""
    return job.undone_by.exclude(state=BatchState.CANCELLED, started_at__isnull=True).first()


def undo_facts(job: BatchJob) -> dict[str, Any]:
    """What the batch page says about undo: the undo of this batch, and whether its owner may
    ask for one now (the service decides again)."""
    undo = undone_by(job)
    return {
        "undone_by": undo,
        "undoable": undo is None and job.action in ORIGINAL_PERMS and job.state in UNDOABLE_STATES,
    }


def restored_value(item: BatchItem) -> Decimal:
    """What undoing an item gives back: the value its document's close released (of a
    line-only close, what the lines of that close released)."""
    document = item.document
    if document is None:
        return Decimal(0)
    params = item.params
    if params.get("header", True):
        return document.released_value
    which = Q(line_no__in=[int(n) for n in params.get("lines", [])])
    if not params.get("dimensions") or params.get("whole"):
        which |= Q(closed_in=document.close_seq)
    value = Line.objects.filter(
        which, document_id=document.pk, close_state=CloseState.CLOSED
    ).aggregate(v=Sum("released_value"))["v"]
    return Decimal(value or 0)


# --- creation ------------------------------------------------------------------------------


def _original(actor: AbstractBaseUser, job_id: int) -> BatchJob:
    """The batch to undo, locked: the actor's own (as every batch), and undoable now."""
    job = job_locked_for(actor, job_id)
    require(actor, Perm.BATCH_RUN, what="batch jobs")
    if job.action == BatchAction.UNDO:
        raise InvalidInput(
            gettext_noop(
                "batch #%(job_id)s is itself an undo (of batch #%(undoes_id)s); an undo cannot be "
                "undone: close the documents again with a new batch"
            ),
            details={"batch": job_id, "rule": "undo_of_undo"},
            params={"job_id": job_id, "undoes_id": job.undoes_id},
        )
    if job.action not in ORIGINAL_PERMS:
        raise InvalidInput(
            gettext_noop(
                "batch #%(job_id)s is a %(action)s batch; only close batches and imports are undone"
            ),
            details={"batch": job_id, "rule": "not_a_close_batch"},
            params={
                "job_id": job_id,
                "action": code_words(job.action, BatchAction(job.action).label),
            },
        )
    earlier = undone_by(job)
    if earlier is not None:
        raise InvalidInput(
            gettext_noop("batch #%(job_id)s is already undone by #%(earlier)s"),
            details={"batch": job_id, "undone_by": earlier.pk, "rule": "already_undone"},
            params={"job_id": job_id, "earlier": earlier.pk},
        )
    if job.state not in UNDOABLE_STATES:
        raise InvalidInput(
            gettext_noop(
                "batch #%(job_id)s is %(state)s: only a batch that has run (done, cancelled or "
                "failed) can be undone"
            ),
            details={"batch": job_id, "state": job.state, "rule": "still_running"},
            params={"job_id": job_id, "state": code_words(job.state, BatchState(job.state).label)},
        )
    return job


@dataclass
class Close:
    """What a batch closed of one document: its last audit event of it, whether that closed
    the header, the close date, the lines it closed as a whole before that last close (an
    import naming the document in several rows), and per dimension the lines it closed in
    that dimension (关闭维度)."""

    seq: int
    header: bool
    day: date
    lines: set[int] = field(default_factory=set)
    dimensions: dict[str, set[int]] = field(default_factory=dict)
    last_lines: set[int] = field(default_factory=set)


def closes_of(job: BatchJob) -> dict[int, Close]:
    """document id → what `job` closed of it: its own close events (whole, lines, and close
    dimensions), and those of the close requests it submitted that executed at once (no route:
    nobody else decided them)."""
    events = AuditEvent.objects.filter(
        object_type=AuditObject.DOCUMENT, action__in=[int(a) for a in CLOSE_ACTIONS]
    )
    fields = ("object_id", "seq", "action", "at", "data")
    rows = list(events.filter(request_id=f"batch:{job.pk}").values_list(*fields))
    requests = [
        str(pk)
        for pk in CloseRequest.objects.filter(
            pk__in=BatchItem.objects.filter(job=job, request__isnull=False).values("request_id"),
            action=RequestAction.CLOSE,
            route__isnull=True,
        ).values_list("pk", flat=True)
    ]
    for start in range(0, len(requests), CREATE_CHUNK):
        part = requests[start : start + CREATE_CHUNK]
        rows += events.filter(request_id__in=part).values_list(*fields)
    closes: dict[int, Close] = {}
    for object_id, seq, action, at, data in sorted(rows, key=lambda row: row[1]):
        data = data or {}
        day = date.fromisoformat(str(data.get("close_date") or timezone.localdate(at)))
        close = closes.get(int(object_id))
        if close is None:
            close = closes[int(object_id)] = Close(seq, False, day)
        close.lines |= close.last_lines
        close.last_lines = set()
        close.seq = seq
        numbers = {int(row["line"]) for row in data.get("lines", [])}
        if action == AuditAction.LINE_DIMENSIONS_CLOSED:
            close.dimensions.setdefault(str(data["dimension"]), set()).update(numbers)
            continue
        close.header, close.day = action == AuditAction.DOCUMENT_CLOSED, day
        close.last_lines = numbers
    return closes


@transaction.atomic
def batch_undo_create(
    *,
    actor: AbstractBaseUser,
    job_id: int,
    reason_code: str = DEFAULT_REASON,
    remark: str = "",
) -> BatchJob:
    """The undo job of batch `job_id` (a draft: preview, then start it like any batch). As a
    reopen batch it needs batch.run, and its documents are those the actor holds reopen.approve
    and the undone batch's permission over; the others are skipped at once."""
    original = _original(actor, job_id)
    reason = reason_get(reason_code, ReasonAction.REOPEN, company_id=None, any_company=True)
    remark = remark.strip() or f"undo of batch #{original.pk}"
    closes = closes_of(original)
    if not closes:
        raise InvalidInput(
            gettext_noop("batch #%(job_id)s closed no document: there is nothing to undo"),
            details={"batch": job_id, "rule": "nothing_closed"},
            params={"job_id": job_id},
        )
    # The reason is recorded on every document the undo reopens: valid in each of their companies.
    ids = list(closes)
    companies = set()
    for start in range(0, len(ids), CREATE_CHUNK):
        part = ids[start : start + CREATE_CHUNK]
        companies |= set(Document.objects.filter(pk__in=part).values_list("company_id", flat=True))
    for company_id in sorted(companies):
        reason_get(reason.code, ReasonAction.REOPEN, company_id=company_id)
    scope = documents_visible_to(actor, Perm.REOPEN_APPROVE) & documents_visible_to(
        actor, ORIGINAL_PERMS[BatchAction(original.action)]
    )
    job = BatchJob.objects.create(
        action=BatchAction.UNDO,
        doc_type=original.doc_type,
        selection={"undoes": original.pk},
        reason_code=reason.code,
        remark=remark,
        created_by_id=actor.pk,
        undoes=original,
    )
    items, outside = _items(job, closes, scope)
    if outside == len(items):
        # As a reopen batch whose selection lies outside the scope: nothing to do, and no
        # document named.
        raise InvalidInput(
            gettext_noop(
                "none of the %(count)s documents batch #%(job_id)s closed lies within your "
                "'reopen.approve' permission (and the permission the batch needed)"
            ),
            details={"batch": job_id, "rule": "outside_scope"},
            params={"count": len(items), "job_id": job_id},
        )
    BatchItem.objects.bulk_create(items, batch_size=CREATE_CHUNK)
    job.total, job.processed, job.skipped = len(items), outside, outside
    job.save(update_fields=["total", "processed", "skipped"])
    audit_record(
        actor=actor,
        action=AuditAction.BATCH_UNDO_CREATED,
        object_type=AuditObject.BATCH,
        object_id=job.pk,
        object_repr=str(job),
        data={"undoes": original.pk, "total": job.total, "outside_scope": outside},
        reason=reason.code,
    )
    return job


def _items(job: BatchJob, closes: dict[int, Close], scope: Q) -> tuple[list[BatchItem], int]:
    """One item per document the batch closed; those outside the scope are skipped at once,
    with a reason that names nothing."""
    ids = sorted(closes)
    visible: dict[int, str] = {}
    for start in range(0, len(ids), CREATE_CHUNK):
        part = ids[start : start + CREATE_CHUNK]
        visible.update(Document.objects.filter(scope, pk__in=part).values_list("pk", "number"))
    items, outside = [], 0
    now = timezone.now()
    for pk in ids:
        close = closes[pk]
        if pk not in visible:
            outside += 1
            items.append(
                BatchItem(
                    job=job,
                    label="—",
                    state=ItemState.SKIPPED,
                    predicted="skipped",
                    outcome="skipped",
                    message=undo_message_english("outside_scope", {}),
                    params={"reason": "outside_scope", "args": {}},
                    processed_at=now,
                )
            )
            continue
        items.append(
            BatchItem(
                job=job,
                document_id=pk,
                label=visible[pk],
                params={
                    "close_event": close.seq,
                    "header": close.header,
                    **({} if close.header else {"close_date": close.day.isoformat()}),
                    **({"lines": sorted(close.lines)} if close.lines else {}),
                    **(
                        {"whole": bool(close.last_lines)}
                        if close.dimensions and not close.header
                        else {}
                    ),
                    **(
                        {"dimensions": {k: sorted(v) for k, v in close.dimensions.items()}}
                        if close.dimensions
                        else {}
                    ),
                },
            )
        )
    return items, outside


# --- deciding each document ----------------------------------------------------------------


__all__ = ["batch_undo_create", "item_messages", "undo_facts", "undone_by"]
