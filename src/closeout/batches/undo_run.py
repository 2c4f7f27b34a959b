"""Deciding and running an undo job's items (批量撤销): per document, whether it changed after
the batch it undoes (skipped, with the reason), and otherwise its reopen: set-based where
the per-document checks allow, one by one with its own reopen path where they do not."""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.approvals.models import RequestAction
from closeout.approvals.selectors import active_routes, period_is_closed, route_choose
from closeout.approvals.services import reopen_request_submit
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.batches.models import BatchAction, BatchItem, BatchJob, ItemState
from closeout.batches.services import item_mark, lock_documents
from closeout.batches.undo import (
    EVENT_ACTIONS,
    NOT_CHANGES,
    ORIGINAL_PERMS,
    undo_message_english,
)
from closeout.closing.dimension_undo import (
    execute_dimensions_undo,
    execute_dimensions_undo_bulk,
)
from closeout.closing.services import (
    document_lock_for,
    execute_lines_reopen,
    execute_reopen,
    execute_reopen_bulk,
)
from closeout.closing.states import Action
from closeout.core.errors import DomainError, Message
from closeout.documents.models import BusinessEvent, CloseState, Document


@dataclass
class Decision:
    outcome: str  # would_reopen, needs_approval, skipped, refused
    reason: str = ""
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return undo_message_english(self.reason, self.args) if self.reason else ""


def _later_changes(items: list[BatchItem]) -> dict[int, list[tuple[int, int]]]:
    """document id → [(seq, action)] of the audit events that record a write to it after the
    batch's close event of it."""
    firsts = {i.document_id: int(i.params["close_event"]) for i in items if i.document_id}
    if not firsts:
        return {}
    rows = (
        AuditEvent.objects.filter(
            object_type=AuditObject.DOCUMENT,
            object_id__in=[str(pk) for pk in firsts],
            seq__gt=min(firsts.values()),
        )
        .exclude(action__in=[int(a) for a in NOT_CHANGES])
        .order_by("seq")
        .values_list("object_id", "seq", "action")
    )
    later: dict[int, list[tuple[int, int]]] = {}
    for object_id, seq, action in rows:
        if seq > firsts[int(object_id)]:
            later.setdefault(int(object_id), []).append((seq, action))
    return later


def _new_events(items: list[BatchItem]) -> set[int]:
    """Documents with a business event received after the batch's close of them."""
    seqs = {int(i.params["close_event"]): i.document_id for i in items if i.document_id}
    if not seqs:
        return set()
    closed_at = {
        seqs[seq]: at
        for seq, at in AuditEvent.objects.filter(seq__in=list(seqs)).values_list("seq", "at")
    }
    rows = BusinessEvent.objects.filter(
        document_id__in=list(closed_at), received_at__gt=min(closed_at.values())
    ).values_list("document_id", "received_at")
    return {pk for pk, received in rows if received > closed_at[pk]}


def _changed(
    document: Document, later: list[tuple[int, int]], new_events: bool, *, header: bool = True
) -> tuple[str, dict[str, Any]] | None:
    """Why the document counts as changed after the batch (reason, args), or None. After a
    line-only close (`header` False) the header is open as the batch left it."""
    args: dict[str, Any] = {"document": document.number}
    by_state: dict[str, str] = {
        CloseState.ARCHIVED: "archived",
        CloseState.ON_HOLD: "on_hold",
        CloseState.REOPEN_PENDING: "reopen_pending",
        CloseState.OPEN: "reopened",
        CloseState.CLOSE_PENDING: "reopened",
    }
    if not header:
        by_state = {
            k: v
            for k, v in by_state.items()
            if k not in (CloseState.OPEN, CloseState.CLOSE_PENDING)
        }
    if document.close_state in by_state:
        reason = by_state[document.close_state]
        return reason, {**args, "state": document.close_state} if reason == "reopened" else args
    actions = {action for _, action in later}
    if AuditAction.DOCUMENT_REOPENED in actions:
        return "reclosed", args
    if new_events or actions & set(EVENT_ACTIONS):
        return "new_events", args
    if later:
        return "changed", {**args, "seq": later[0][0]}
    return None


class _Scope:
    """What deciding many documents asks again and again, asked once per chunk: the actor's
    permissions per unit and type, the reopen routes, the closed periods per close date."""

    def __init__(self, job: BatchJob) -> None:
        self.user = job.created_by
        self.perms = (Perm.REOPEN_APPROVE, ORIGINAL_PERMS[BatchAction.CLOSE])
        self.known: dict[tuple[int, str], str] = {}
        self.routes = active_routes(RequestAction.REOPEN)
        self.closed_periods: dict[date | None, bool] = {}

    def lacking(self, document: Document) -> str:
        key = (document.org_unit_id, document.doc_type)
        if key not in self.known:
            self.known[key] = next(
                (
                    p
                    for p in self.perms
                    if not user_has_perm(
                        self.user, p, org_unit=document.org_unit, doc_type=document.doc_type
                    )
                ),
                "",
            )
        return self.known[key]

    def in_closed_period(self, day: date | None) -> bool:
        if day not in self.closed_periods:
            self.closed_periods[day] = period_is_closed(day)
        return self.closed_periods[day]

    def needs_approval(self, document: Document) -> bool:
        """A reopen route applies (as `route_for_reopen`, with the routes loaded once)."""
        if not self.routes:
            return False
        route = route_choose(
            document=document,
            action=RequestAction.REOPEN,
            exception=False,
            open_value=document.released_value_company,
            routes=self.routes,
        )
        return route is not None


def _decide(
    job: BatchJob,
    item: BatchItem,
    later: dict[int, list[tuple[int, int]]],
    new_events: set[int],
    scope: _Scope,
) -> Decision:
    document = item.document
    if document is None:
        return Decision("skipped", "outside_scope")
    label = {"document": document.number}
    header = bool(item.params.get("header", True))
    changed = _changed(
        document, later.get(document.pk, []), document.pk in new_events, header=header
    )
    if changed is not None:
        return Decision("skipped", *changed)
    lacking = scope.lacking(document)
    if lacking:
        user = job.created_by.get_username()
        return Decision("refused", "no_permission", {**label, "user": user, "perm": lacking})
    day = document.close_date if header else date.fromisoformat(item.params["close_date"])
    if scope.in_closed_period(day):
        return Decision("refused", "closed_period", {**label, "date": str(day)})
    if scope.needs_approval(document):
        return Decision("needs_approval") if header else Decision("refused", "lines_route", label)
    return Decision("would_reopen")


def _decisions(job: BatchJob, items: list[BatchItem]) -> list[Decision]:
    later = _later_changes(items)
    new_events = _new_events(items)
    scope = _Scope(job)
    return [_decide(job, item, later, new_events, scope) for item in items]


def predict_undo(job: BatchJob, items: list[BatchItem]) -> list[tuple[str, str]]:
    """(predicted outcome, message) per item: what running the undo now would do; the reason
    goes into the item's parameters too (the caller saves them), to be shown in any language."""
    decisions = _decisions(job, items)
    noted = [
        item
        for item, decision in zip(items, decisions, strict=True)
        if _note_reason(item, decision)
    ]
    BatchItem.objects.bulk_update(noted, ["params"])  # the few with a reason (or a changed one)
    return [(d.outcome, d.message) for d in decisions]


def _note_reason(item: BatchItem, decision: Decision) -> bool:
    """Keep the decision's reason in the item's parameters; True when they changed."""
    params = {k: v for k, v in item.params.items() if k not in ("reason", "args")}
    if decision.reason:
        params.update(reason=decision.reason, args=decision.args)
    changed: bool = params != item.params
    item.params = params
    return changed


# --- running -------------------------------------------------------------------------------


def process_undo_items(job: BatchJob, items: list[BatchItem]) -> None:
    """Reopen (or request the reopen of) each item's document, locked in id order by the
    caller's chunk, each in its own savepoint; a document that moved on meanwhile is refused by
    the state machine and the item says so."""
    documents = lock_documents(items)
    for item in items:
        if item.document_id:
            item.document = documents[item.document_id]
    decisions = _decisions(job, items)
    bulk = _reopen_in_bulk(job, items, decisions)
    changed = [
        item
        for item, decision in zip(items, decisions, strict=True)
        if (bulk[item.pk] if item.pk in bulk else _run_one(job, item, decision))
    ]
    BatchItem.objects.bulk_update(changed, ["params", "request"])


def _reopen_in_bulk(
    job: BatchJob, items: list[BatchItem], decisions: list[Decision]
) -> dict[int, bool]:
    """Reopen set-based the documents whose undo is plain (decided above, under the chunk's
    locks, with every guard: scope, changes since, closed period, route): a reopen of the
    header's last close (`closing.services.execute_reopen_bulk`) or a reopen of the dimensions
    the batch closed on lines still open (`dimension_undo.execute_dimensions_undo_bulk`),
    one audit event per document (and dimension). Returns the items done (each: whether its
    parameters changed); the rest (line closes, multi-row closes, quarantined events,
    requests, refusals) go one by one."""
    ready = [
        item
        for item, decision in zip(items, decisions, strict=True)
        if decision.outcome == "would_reopen"
        and item.document is not None
        and not item.params.get("lines")
        and not item.params.get("whole")
    ]
    plain = {
        item.document_id: (item, item.document)
        for item in ready
        if item.params.get("header", True) and not item.params.get("dimensions")
    }
    dimensions = {
        item.document_id: (item, item.document)
        for item in ready
        if not item.params.get("header", True) and item.params.get("dimensions")
    }
    common: dict[str, Any] = {
        "actor": job.created_by,
        "reason": job.reason_code,
        "remark": job.remark,
        "request_id": f"batch:{job.pk}",
    }
    reopened = execute_reopen_bulk(
        documents=[document for _, document in plain.values() if document is not None],
        **common,
    )
    reopened |= execute_dimensions_undo_bulk(
        undo=[
            (document, {k: [int(n) for n in v] for k, v in item.params["dimensions"].items()})
            for item, document in dimensions.values()
            if document is not None
        ],
        **common,
    )
    plain |= dimensions
    done: dict[int, bool] = {}
    for document_id, lines in reopened.items():
        item = plain[document_id][0]
        done[item.pk] = _note_reason(item, Decision("would_reopen"))
        item_mark(
            item, ItemState.DONE, "reopened", Message(gettext_noop("lines %(lines)s"), lines=lines)
        )
    return done


def _run_one(job: BatchJob, item: BatchItem, decision: Decision) -> bool:
    """Do what was decided for one item; True when its parameters or request changed (the
    caller saves those; the chunk saves state, outcome and message)."""
    changed = _note_reason(item, decision)
    if decision.outcome in ("skipped", "refused"):
        state = ItemState.SKIPPED if decision.outcome == "skipped" else ItemState.FAILED
        item_mark(item, state, decision.outcome, decision.message)
        return changed
    assert item.document is not None  # noqa: S101 (decided above)
    try:
        with transaction.atomic():  # a savepoint: each document all-or-nothing
            if decision.outcome == "needs_approval":
                request = reopen_request_submit(
                    actor=job.created_by,
                    document=item.document,
                    reason_code=job.reason_code,
                    remark=job.remark,
                )
                item.request = request
                item_mark(
                    item,
                    ItemState.DONE,
                    "requested",
                    Message(gettext_noop("reopen request #%(id)s"), id=request.pk),
                )
                return True
            reopened = _reopen_closes(job, item, item.document)
        item_mark(
            item,
            ItemState.DONE,
            "reopened",
            Message(gettext_noop("lines %(lines)s"), lines=reopened),
        )
    except DomainError as error:
        item_mark(item, ItemState.FAILED, "refused", error)
    return changed


def _reopen_closes(job: BatchJob, item: BatchItem, document: Document) -> list[int]:
    """Reopen what the batch closed of one document, through the reopen path: the header (or
    the lines it closed as a whole, in every row of an import), then each dimension it closed
    (关闭维度) on lines still open. Returns the lines reopened as a whole."""
    params = item.params
    header = bool(params.get("header", True))
    dimensions = params.get("dimensions") or {}
    document = document_lock_for(
        job.created_by, document, Perm.REOPEN_APPROVE, action=Action.REOPEN if header else None
    )
    common: dict[str, Any] = {
        "actor": job.created_by,
        "document": document,
        "reason": job.reason_code,
        "remark": job.remark,
        "request_id": f"batch:{job.pk}",
    }
    reopened: list[int] = []
    also = [int(n) for n in params.get("lines", [])]
    if header:
        reopened = execute_reopen(**common, also_lines=also).lines_reopened
    elif not dimensions or params.get("whole") or also:
        reopened = execute_lines_reopen(**common, also_lines=also).lines_reopened
    if dimensions:
        document.refresh_from_db()
        execute_dimensions_undo(
            **common, dimensions={k: [int(n) for n in v] for k, v in dimensions.items()}
        )
    return reopened
