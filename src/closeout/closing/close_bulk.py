"""The bulk building blocks of a close, shared by the manual close, the sweep, a batch and an
import: the header fields a close writes, the released totals, and the set-based close of many
documents with one audit event each."""

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry
from closeout.closing.rules import dec
from closeout.closing.states import (
    Action,
)
from closeout.closing.transitions import (
    headers_roll_up,
    lines_close,
)
from closeout.core.sql import ids_param
from closeout.documents.models import (
    CloseState,
    Document,
    Line,
)


def _released_totals() -> dict[str, Coalesce]:
    sums = Line.objects.filter(document_id=OuterRef("pk")).values("document_id")
    return {
        "released_value": Coalesce(
            Subquery(sums.annotate(v=Sum("released_value")).values("v")[:1]), dec(0)
        ),
        "released_value_company": Coalesce(
            Subquery(sums.annotate(v=Sum("released_value_company")).values("v")[:1]), dec(0)
        ),
    }


def released_totals_refresh(document_ids: list[int]) -> None:
    Document.objects.filter(pk__in=document_ids).update(**_released_totals())


def close_fields(
    *,
    actor_id: int | None,
    kind: str,
    reason: str,
    remark: str,
    close_date: date,
    now: datetime,
) -> dict[str, Any]:
    """What a header close stamps besides its state."""
    return {
        "close_kind": kind,
        "close_reason": reason,
        "close_remark": remark,
        "close_date": close_date,
        "closed_by_id": actor_id,
        "closed_at": now,
    }


def close_documents_bulk(
    *,
    document_ids: list[int],
    doc_type: str,
    kind: str,
    reason: str,
    now: datetime,
    actor: AbstractBaseUser | None = None,
    remark: str = "",
    close_date: date | None = None,
    line_ids: list[int] | None = None,
) -> list[AuditEntry]:
    """Close whole open documents, locked by the caller (the sweep's and the batches' path),
    or with `line_ids` only those of their lines (the import's line closes: a header closes
    with its last line); returns one audit entry per document that changed.

    Each header row is written once (close sequence, released totals and close fields in one
    UPDATE), since every extra UPDATE of a row costs a new row version and its index entries."""
    open_ids = list(
        Document.objects.filter(
            pk__in=ids_param(document_ids), close_state=CloseState.OPEN
        ).values_list("pk", flat=True)
    )
    if not open_ids:
        return []
    actor_id = actor.pk if actor is not None else None
    counts = lines_close(
        document_ids=open_ids,
        line_filter=Q() if line_ids is None else Q(pk__in=ids_param(line_ids)),
        action=Action.CLOSE,
        actor_id=actor_id,
        kind=kind,
        reason=reason,
        now=now,
        doc_type=doc_type,
        bump_seq=False,
    )
    totals = _released_totals()
    headers_closed = headers_roll_up(
        open_ids,
        Action.CLOSE,
        now=now,
        close_seq=F("close_seq") + 1,
        **totals,
        **close_fields(
            actor_id=actor_id,
            kind=kind,
            reason=reason,
            remark=remark,
            close_date=close_date or timezone.localdate(now),
            now=now,
        ),
    )
    # Documents a policy lets through with a line still on hold keep their header open (none
    # when every header closed: then there is no statement to send).
    if headers_closed < len(open_ids):
        Document.objects.filter(pk__in=ids_param(open_ids), close_state=CloseState.OPEN).update(
            close_seq=F("close_seq") + 1, **totals
        )
    rows = Document.objects.filter(pk__in=ids_param(open_ids)).values_list(
        "pk", "doc_type", "number", "close_state", "released_value", "released_value_company"
    )
    return [
        AuditEntry(
            action=(
                AuditAction.DOCUMENT_CLOSED
                if state == CloseState.CLOSED
                else AuditAction.LINES_CLOSED
            ),
            object_type=AuditObject.DOCUMENT,
            object_id=pk,
            object_repr=f"{dt} {number}",
            data={
                "from": CloseState.OPEN,
                "to": state,
                "action": Action.CLOSE,
                "kind": kind,
                "lines_closed": counts.get(pk, 0),
                "released_value": value,
                "released_value_company": value_company,
            },
            reason=reason,
        )
        for pk, dt, number, state, value, value_company in rows
        if state == CloseState.CLOSED or counts.get(pk, 0)
    ]


def lines_released(line_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per document, what each of the closed lines released, in line order (as a close
    records it in its audit event)."""
    released: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        Line.objects.filter(pk__in=ids_param(line_ids))
        .order_by("document_id", "line_no")
        .values_list(
            "document_id", "line_no", "released_qty", "released_value", "released_value_company"
        )
    )
    for doc_id, line_no, qty, value, value_company in rows:
        released[doc_id].append(
            {
                "line": line_no,
                "released_qty": qty,
                "released_value": value,
                "released_value_company": value_company,
            }
        )
    return released
