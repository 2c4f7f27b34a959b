"""Creating batch jobs: documents or requests named by number or id, each once, inside the
actor's scope, with the permissions each action needs."""

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require
from closeout.approvals.models import CloseRequest, RequestAction
from closeout.batches.models import BatchAction, BatchItem, BatchJob
from closeout.closing.dimensions import dimension_get
from closeout.closing.models import ReasonAction
from closeout.closing.queue import (
    QueueFilter,
    document_queue,
)
from closeout.closing.reasons import reason_get
from closeout.closing.services import (
    remark_check,
)
from closeout.core.errors import (
    CompanyAmbiguous,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from closeout.core.sql import ids_param
from closeout.documents.models import Document, doc_type_words
from closeout.documents.types import spec_for

CREATE_CHUNK = 5000


# What a lost or broken database connection raises: safe to retry a chunk after it.
CONNECTION_ERRORS = (OperationalError, InterfaceError)


DOCUMENT_ACTIONS = (BatchAction.CLOSE, BatchAction.REOPEN, BatchAction.REQUEST)


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
                gettext_noop(
                    "%(doc_type)s %(number)s exists in several companies (%(list)s): make one "
                    "batch per company"
                ),
                details={"field": "numbers", "number": number, "companies": sorted(codes)},
                params={
                    "doc_type": doc_type_words(doc_type),
                    "number": number,
                    "list": ", ".join(sorted(codes)),
                },
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
                gettext_noop("the list of document numbers is empty"),
                details={"field": "numbers"},
                params={},
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
                gettext_noop("no %(doc_type)s numbered %(shown)s"),
                details={"field": "numbers", "missing": missing[:100]},
                params={"doc_type": doc_type_words(doc_type), "shown": shown},
            )
        yield from ((found[n], n) for n in wanted)
        return
    if queue_filter is None:
        raise InvalidInput(
            gettext_noop("a batch needs a list of numbers or a filter"),
            details={"field": "numbers"},
            params={},
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
            gettext_noop(
                "an import batch is created by executing an uploaded file (closeout import run)"
            ),
            details={"field": "action"},
            params={},
        )
    if action not in BatchAction.values:
        raise InvalidInput(
            gettext_noop("unknown batch action '%(action)s'; use one of: %(values)s"),
            details={"field": "action"},
            params={"action": action, "values": ", ".join(BatchAction.values)},
        )
    if action in DOCUMENT_ACTIONS:
        spec_for(doc_type)
        # Codes of one company pass here; each document's close checks its company's codes.
        reason_get(
            reason_code,
            ReasonAction.REOPEN if action == BatchAction.REOPEN else ReasonAction.CLOSE,
            company_id=None,
            any_company=True,
        )
    remark_check(remark)
    remark_check(comment, field="comment")
    if dimension:
        if action != BatchAction.CLOSE:
            raise InvalidInput(
                gettext_noop("only a close batch takes a close dimension"),
                details={"field": "dimension"},
                params={},
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
            raise InvalidInput(
                gettext_noop("a batch approval needs request ids"),
                details={"field": "requests"},
                params={},
            )
        known = _requests_in_scope(actor, ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise InvalidInput(
                gettext_noop("no close request #%(missing)s"),
                details={"field": "requests"},
                params={"missing": missing[0]},
            )
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


def job_for(actor: AbstractBaseUser, job_id: int, *, lock: bool = False) -> BatchJob:
    """The batch job `job_id`, for its creator only: anyone else is refused (without
    batch.run, for lacking it). With `lock`, under a row lock for a write to the job."""
    jobs = (
        BatchJob.objects.select_for_update(no_key=True)
        if lock
        else BatchJob.objects.select_related("created_by")
    )
    job = jobs.filter(pk=job_id).first()
    if job is None:
        raise NotFound(gettext_noop("no batch job #%(job_id)s"), params={"job_id": job_id})
    if job.created_by_id != actor.pk:
        require(actor, Perm.BATCH_RUN, what=f"batch #{job_id}")
        raise PermissionDenied(
            gettext_noop("batch #%(job_id)s belongs to another user"),
            details={"rule": "owner_only"},
            params={"job_id": job_id},
        )
    return job


def job_locked_for(actor: AbstractBaseUser, job_id: int) -> BatchJob:
    """`job_for` under the job's row lock."""
    return job_for(actor, job_id, lock=True)


REFUSED_OUTCOMES = ("refused", "needs_remark")


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


__all__ = [
    "BATCH_PERMS",
    "CONNECTION_ERRORS",
    "CREATE_CHUNK",
    "DOCUMENT_ACTIONS",
    "REFUSED_OUTCOMES",
    "REQUEST_PERMS",
    "batch_create",
    "items_save",
]
