"""Many close requests at once (an import, a batch close): each all-or-nothing with the checks,
records and audit events of `close_request_submit`, with the reads and writes done together."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.approvals.models import (
    ApprovalRoute,
    CloseRequest,
    RequestAction,
    RequestState,
)
from closeout.approvals.requests import (
    notify_context,
    request_emit,
    request_link,
)
from closeout.approvals.selectors import (
    active_routes,
    period_is_closed,
)
from closeout.approvals.submit import close_request_submit
from closeout.approvals.submit_checks import (
    CloseChecked,
    CloseStart,
    checklist_snapshot,
    close_checks_many,
    enter_pending,
    first_step,
    steps_snapshot,
)
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.close_bulk import lines_released
from closeout.closing.models import ReasonAction
from closeout.closing.reasons import reason_get
from closeout.closing.services import (
    close_date_check,
    close_documents_bulk,
    named,
    remark_check,
)
from closeout.closing.states import Action, next_state
from closeout.core.errors import (
    DomainError,
    InvalidInput,
)
from closeout.core.notice_kinds import NoticeKind
from closeout.core.rows import rows_insert
from closeout.documents.lookup import document_lock
from closeout.documents.models import CloseKind, CloseState, Document
from closeout.notifications.services import notify


@dataclass(frozen=True)
class CloseRequestItem:
    """One close request of a bulk submit (`close_requests_submit`)."""

    document: Document
    reason_code: str
    remark: str = ""
    close_date: date | None = None
    line_nos: list[int] | None = None


class _Bulk:
    """What the requests of one bulk submit share: the actor's permission per organisation
    unit and type, the reasons, the close routes and their steps."""

    def __init__(self, actor: AbstractBaseUser) -> None:
        self.actor = actor
        self.routes = active_routes(RequestAction.CLOSE)
        self._perms: dict[tuple[int, str], bool] = {}
        self._reasons: dict[tuple[str, int], str | DomainError] = {}
        self._steps: dict[int, list[dict[str, Any]]] = {}
        self._periods: dict[tuple[date, int | None], bool] = {}

    def period_is_closed(self, day: date, company_id: int | None) -> bool:
        """Whether the day's accounting period is closed for the company, read once."""
        key = (day, company_id)
        if key not in self._periods:
            self._periods[key] = period_is_closed(day, company_id)
        return self._periods[key]

    def require(self, document: Document) -> None:
        key = (document.org_unit_id, document.doc_type)
        if key not in self._perms:
            self._perms[key] = user_has_perm(
                self.actor,
                Perm.CLOSE_REQUEST,
                org_unit=document.org_unit,
                doc_type=document.doc_type,
            )
        if not self._perms[key]:  # refused: the single check says so in its own words
            require(
                self.actor,
                Perm.CLOSE_REQUEST,
                org_unit=document.org_unit,
                doc_type=document.doc_type,
                what=document.label,
            )

    def reason(self, code: str, company_id: int) -> str:
        """The reason `code` for a document of the company (per company: codes can be)."""
        key = (code, company_id)
        if key not in self._reasons:
            try:
                self._reasons[key] = reason_get(
                    code, ReasonAction.CLOSE, company_id=company_id
                ).code
            except DomainError as error:
                self._reasons[key] = error
        found = self._reasons[key]
        if isinstance(found, DomainError):
            raise found
        return found

    def steps(self, route: ApprovalRoute | None) -> list[dict[str, Any]]:
        if route is None:
            return []
        if route.pk not in self._steps:
            self._steps[route.pk] = steps_snapshot(route)
        return self._steps[route.pk]


@transaction.atomic
def close_requests_submit(
    *, actor: AbstractBaseUser, items: Sequence[CloseRequestItem]
) -> list[CloseRequest | DomainError]:
    """Submit many close requests at once, each all-or-nothing with the checks, records and
    audit events of `close_request_submit`: the result per item is its request (executed at
    once where no route applies) or the DomainError that refused it. The documents are locked
    once, in id order; permissions, reasons and routes are read once; the request records are
    inserted together (COPY on PostgreSQL). A document named again after its first item is
    submitted one by one after the others, so it sees what the first one did."""
    results: list[CloseRequest | DomainError | None] = [None] * len(items)
    ids = sorted({item.document.pk for item in items})
    documents = {
        d.pk: d
        for d in Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit")
        .filter(pk__in=ids)
        .order_by("pk")
    }
    bulk = _Bulk(actor)
    started: list[tuple[int, CloseStart]] = []
    again: list[int] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        if item.document.pk in seen:
            again.append(i)
            continue
        seen.add(item.document.pk)
        try:
            started.append((i, _bulk_start(bulk, documents, item)))
        except DomainError as error:
            results[i] = error
    # The checks read and lock, and write nothing: a refused item leaves nothing to undo (its
    # lines stay locked with its document until the end of the transaction).
    checked: list[tuple[int, CloseChecked]] = []
    outcomes = close_checks_many(actor, [s for _i, s in started], routes=bulk.routes)
    for (i, _s), outcome in zip(started, outcomes, strict=True):
        if isinstance(outcome, DomainError):
            results[i] = outcome
        else:
            checked.append((i, outcome))
    now = timezone.now()
    requests = [_bulk_record(bulk, c, now) for _i, c in checked]
    rows_insert(requests)
    routeless: list[tuple[int, CloseChecked, CloseRequest]] = []
    for (i, c), request in zip(checked, requests, strict=True):
        if c.route is None:
            routeless.append((i, c, request))
        else:
            results[i] = _bulk_pending(actor, c, request, now)
    for i, result in _bulk_close(actor, routeless, now).items():
        results[i] = result
    for i in again:
        item = items[i]
        try:
            results[i] = close_request_submit(
                actor=actor,
                document=item.document,
                reason_code=item.reason_code,
                remark=item.remark,
                close_date=item.close_date,
                line_nos=item.line_nos,
            )
        except DomainError as error:
            results[i] = error
    return [r for r in results if r is not None]


def _bulk_start(bulk: _Bulk, documents: dict[int, Document], item: CloseRequestItem) -> CloseStart:
    """The checks of `close_request_submit` before the lines, in its order: permission,
    state, reason, remark, close date."""
    document = documents.get(item.document.pk) or document_lock(item.document.pk)
    bulk.require(document)
    next_state(named(document), document.close_state, Action.REQUEST_CLOSE)
    reason = bulk.reason(item.reason_code, document.company_id)
    remark_check(item.remark)
    day = close_date_check(item.close_date, document, period_is_closed=bulk.period_is_closed)
    return CloseStart(document, reason, item.remark, day, item.line_nos)


def _bulk_record(bulk: _Bulk, checked: CloseChecked, now: Any) -> CloseRequest:
    """The request record of a checked item; a route-less one is recorded executed, as its
    close follows in the same transaction (or the record goes again with a refused close)."""
    steps = bulk.steps(checked.route)
    request = CloseRequest(
        document=checked.document,
        action=RequestAction.CLOSE,
        line_nos=checked.line_nos,
        reason_code=checked.reason,
        remark=checked.remark,
        close_date=checked.close_date,
        requester_id=bulk.actor.pk,
        route=checked.route,
        steps=steps,
        current_step=first_step(steps),
        exception=checked.exception,
        open_value=checked.open_value,
        checklist=checklist_snapshot(checked.checklist),
        submitted_at=now,
        step_started_at=now,
    )
    # The requester is known: its notifications need not read it again.
    request._state.fields_cache["requester"] = bulk.actor
    if checked.route is None:
        request.state, request.ended_at = RequestState.EXECUTED, now
    return request


def _bulk_pending(
    actor: AbstractBaseUser, checked: CloseChecked, request: CloseRequest, now: Any
) -> CloseRequest | DomainError:
    """Put a routed request's document (or lines) into the pending state, as a single submit
    does; a refusal removes the request record again."""
    try:
        with transaction.atomic():  # a savepoint: the item all-or-nothing
            return enter_pending(
                actor,
                request,
                checked.document,
                now,
                exception=checked.exception,
                open_value=checked.open_value,
                attachments=0,
            )
    except DomainError as error:
        CloseRequest.objects.filter(pk=request.pk).delete()
        return error


def _bulk_close(
    actor: AbstractBaseUser,
    members: list[tuple[int, CloseChecked, CloseRequest]],
    now: Any,
) -> dict[int, CloseRequest | DomainError]:
    """Execute the route-less requests at once, set-based: their lines (checked just now,
    under the same locks) close in one go per (type, reason, remark, date), a header with its
    last line, and each document gets the audit event a single request's close records."""
    groups: dict[tuple[str, str, str, date], list[tuple[int, CloseChecked, CloseRequest]]]
    groups = defaultdict(list)
    for member in members:
        c = member[1]
        groups[(c.document.doc_type, c.reason, c.remark, c.close_date)].append(member)
    entries: list[AuditEntry] = []
    changed: dict[int, AuditEntry] = {}
    for (doc_type, reason, remark, day), group in groups.items():
        line_ids = [line.pk for _i, c, _r in group for line in c.lines]
        for entry in close_documents_bulk(
            document_ids=[c.document.pk for _i, c, _r in group],
            doc_type=doc_type,
            kind=CloseKind.MANUAL,
            reason=reason,
            now=now,
            actor=actor,
            remark=remark,
            close_date=day,
            line_ids=line_ids,
        ):
            changed[int(entry.object_id)] = entry
    released = lines_released([line.pk for _i, c, _r in members for line in c.lines])
    results: dict[int, CloseRequest | DomainError] = {}
    done: list[tuple[CloseChecked, CloseRequest]] = []
    states: dict[int, str] = {}  # the state each closed document is in now
    for i, c, request in members:
        found = changed.get(c.document.pk)
        if found is None:  # nothing closed after all: no request either
            CloseRequest.objects.filter(pk=request.pk).delete()
            results[i] = InvalidInput(
                gettext_noop("%(document)s has no open line to close"),
                params={"document": named(c.document)},
            )
            continue
        states[c.document.pk] = found.data["to"]
        entries.append(_close_entry(found, c, request, released[c.document.pk]))
        done.append((c, request))
        results[i] = request
    audit_append(actor=actor, entries=entries, at=now)
    for c, request in done:
        notify(
            recipients=[actor],
            kind=NoticeKind.REQUEST_EXECUTED,
            context=notify_context(request, close_state=states[c.document.pk]),
            link=request_link(request),
        )
        request_emit("request.executed", request)
    return results


def _close_entry(
    entry: AuditEntry, c: CloseChecked, request: CloseRequest, lines: list[dict[str, Any]]
) -> AuditEntry:
    """The bulk close's audit entry of a document, with what `execute_close` records."""
    data: dict[str, Any] = {
        "from": CloseState.OPEN,
        "to": entry.data["to"],
        "action": Action.CLOSE,
        "kind": CloseKind.MANUAL,
        "close_date": c.close_date,
        "lines": lines,
        "released_value": sum((line["released_value"] for line in lines), Decimal(0)),
        "exceptions": [check.rule.code for check in c.checklist.exceptions],
        "warnings": [check.rule.code for check in c.checklist.warnings],
    }
    if c.remark:
        data["remark"] = c.remark
    entry.data, entry.object_repr = data, c.document.label
    entry.request_id = str(request.pk)
    return entry
