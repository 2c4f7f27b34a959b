"""The one place that writes close states (结案状态) of documents and lines.

Every write is an action of `closing.states`: the single-document write checks the locked
document's state against the table and refuses with the document, its state, the action and what
is allowed; the set-based twins (sweep, batches, imports, archive) filter on the states the
table lets the action start from, so a row that moved on meanwhile is simply not changed. The
callers write the audit event of each change in the same transaction.
"""

from collections import Counter
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import translation
from django.utils.translation import gettext_noop

from closeout.closing.models import LineDimensionClose
from closeout.closing.states import (
    ACTION_LABELS,
    DOCUMENT_TRANSITIONS,
    LINE_STATES_LEFT_TO_CLOSE,
    LINE_TRANSITIONS,
    Action,
    from_states,
    next_state,
)
from closeout.closing.types import close_spec_for
from closeout.core.errors import Bilingual, InvalidTransition
from closeout.core.sql import ids_param
from closeout.documents.models import Document, Line


def _target(action: Action, *, lines: bool) -> str:
    table = LINE_TRANSITIONS if lines else DOCUMENT_TRANSITIONS
    targets = {to for (_state, act), to in table.items() if act == action}
    if len(targets) != 1:
        what = "lines" if lines else "documents"
        raise InvalidTransition(
            gettext_noop("the action %(action)s does not apply to %(what)s"),
            params={"action": action, "what": what},
        )
    return targets.pop()


def _zh(text: object) -> str:
    with translation.override("zh-hans"):
        return str(text)


def line_left_to_close() -> Exists:
    """True on documents with a line still to close (open, on hold or pending approval)."""
    return Exists(
        Line.objects.filter(document_id=OuterRef("pk"), close_state__in=LINE_STATES_LEFT_TO_CLOSE)
    )


# --- documents -----------------------------------------------------------------------------


def document_state_set(
    document: Document, action: Action, *, now: datetime, **fields: Any
) -> tuple[str, str]:
    """Apply `action` to one document the caller has locked and re-read; returns (from, to).

    The UPDATE re-checks the state it read, so even a caller that forgot the lock cannot
    overwrite a state that moved on."""
    before = document.close_state
    target = next_state(document.label, before, action)
    changed = Document.objects.filter(pk=document.pk, close_state=before).update(
        close_state=target, state_changed_at=now, version=F("version") + 1, **fields
    )
    if changed != 1:
        raise InvalidTransition(
            gettext_noop("%(document)s changed while being %(action)sd; try again"),
            details={"state": before, "action": str(action)},
            params={
                "document": document.in_words,
                "action": Bilingual(str(action), _zh(ACTION_LABELS[action])),
            },
        )
    document.close_state = target
    return before, target


def documents_state_set(
    document_ids: list[int],
    action: Action,
    *,
    now: datetime,
    only: Q | None = None,
    **fields: Any,
) -> int:
    """The set-based twin: apply `action` to those of the documents whose state allows it (and
    that match `only`); returns how many changed."""
    if not document_ids:
        return 0
    qs = Document.objects.filter(
        pk__in=ids_param(document_ids), close_state__in=from_states(action)
    )
    if only is not None:
        qs = qs.filter(only)
    return qs.update(
        close_state=_target(action, lines=False),
        state_changed_at=now,
        version=F("version") + 1,
        **fields,
    )


def headers_roll_up(
    document_ids: list[int], action: Action, *, now: datetime, **fields: Any
) -> int:
    """The header/line roll-up: the headers among `document_ids` with no line left to close
    take `action` (a close); the others keep their state."""
    return documents_state_set(
        document_ids, action, now=now, only=~Q(line_left_to_close()), **fields
    )


# --- lines ---------------------------------------------------------------------------------


def lines_state_set(lines: QuerySet[Line], action: Action, **fields: Any) -> int:
    """Apply `action` to the given lines whose state allows it; returns how many changed."""
    return lines.filter(close_state__in=from_states(action, lines=True)).update(
        close_state=_target(action, lines=True), **fields
    )


# What a reopen clears on a document: its close facts (its totals are refreshed from its lines).
DOCUMENT_CLOSE_CLEARED: dict[str, Any] = {
    "close_kind": "",
    "close_reason": "",
    "close_remark": "",
    "close_date": None,
    "closed_by": None,
    "closed_at": None,
}

# What a line's reopen clears: the stamp of the close it undoes and what that close released.
LINE_CLOSE_CLEARED: dict[str, Any] = {
    "close_kind": "",
    "close_reason": "",
    "closed_by": None,
    "closed_at": None,
    "closed_in": None,
    "released_qty": 0,
    "released_value": 0,
    "released_value_company": 0,
}


def check_lines(document: Document, lines: list[Line], action: Action) -> None:
    """Refuse the action when one of the chosen lines is not in a state it may start from."""
    for line in lines:
        next_state(f"{document.label} line {line.line_no}", line.close_state, action, lines=True)


def lines_close(
    *,
    document_ids: list[int],
    line_filter: Q,
    action: Action,
    actor_id: int | None,
    kind: str,
    reason: str,
    now: datetime,
    doc_type: str,
    bump_seq: bool = True,
) -> Counter[int]:
    """Close the given documents' lines that match `line_filter` and whose state lets `action`
    (close, or approve_close of a line request) start, stamping the close sequence (the
    document's next one) and what each line releases; returns the lines closed per document.

    Set-based: one UPDATE … FROM for any number of lines, the same SQL on SQLite and
    PostgreSQL. With `bump_seq=False` the caller advances `close_seq` itself (the sweep does it
    in its one UPDATE of the headers)."""
    close = close_spec_for(doc_type)
    released_value = close.released_value()
    documents = ids_param(document_ids)
    source = (
        Line.objects.filter(
            document_id__in=documents,
            close_state__in=from_states(action, lines=True),
        )
        .filter(line_filter)
        .order_by()
        .values(
            line_id=F("id"),
            seq=F("document__close_seq") + 1,
            rq=close.released_qty(),
            rv=released_value,
            rvc=released_value * F("document__exchange_rate"),
        )
    )
    source_sql, source_params = source.query.sql_with_params()
    qn = connection.ops.quote_name
    line = qn(Line._meta.db_table)
    # Only quoted identifiers and Django's compiled SELECT are formatted in; values are params.
    # The target rows are also limited to the documents' lines: joined on the id alone, the
    # planner hashed src and read the whole line table for every chunk.
    sql = (
        f"WITH src AS ({source_sql}) UPDATE {line} SET "  # noqa: S608
        f"{qn('close_state')} = %s, {qn('close_kind')} = %s, {qn('close_reason')} = %s, "
        f"{qn('closed_by_id')} = %s, {qn('closed_at')} = %s, {qn('closed_in')} = src.seq, "
        f"{qn('released_qty')} = src.rq, {qn('released_value')} = src.rv, "
        f"{qn('released_value_company')} = src.rvc "
        f"FROM src WHERE {line}.{qn('id')} = src.line_id "
        f"AND {line}.{qn('document_id')} IN ({documents.sql}) "
        f"RETURNING {line}.{qn('document_id')}"
    )
    closed_at = Line._meta.get_field("closed_at").get_db_prep_save(now, connection)
    params = (
        *source_params,
        _target(action, lines=True),
        kind,
        reason,
        actor_id,
        closed_at,
        *documents.params,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counts = Counter(row[0] for row in cursor.fetchall())
    if bump_seq:
        Document.objects.filter(pk__in=ids_param(document_ids)).update(close_seq=F("close_seq") + 1)
    return counts


# --- close dimensions (关闭维度) ------------------------------------------------------------


def line_dimensions_close(rows: list[LineDimensionClose]) -> int:
    """Close dimensions of lines still open as a whole (the caller checked the states and
    never writes a line's last dimension: that one closes the line); returns how many."""
    LineDimensionClose.objects.bulk_create(rows)
    return len(rows)


def line_dimensions_reopen(line_ids: list[int], dimension: str) -> int:
    """Reopen one dimension of the given lines; returns how many were closed in it."""
    deleted, _ = LineDimensionClose.objects.filter(
        line_id__in=line_ids, dimension=dimension
    ).delete()
    return deleted


def line_dimension_closes_delete(close_ids: list[int]) -> int:
    """Reopen the dimension closes of these ids (a batch undo gives back exactly the
    dimensions it closed, of several dimensions at once); returns how many."""
    deleted, _ = LineDimensionClose.objects.filter(pk__in=ids_param(close_ids)).delete()
    return deleted
