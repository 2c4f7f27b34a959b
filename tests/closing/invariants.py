"""The invariants of the close state machine (DESIGN.md), checked over a set of documents: by
the property-based state machine after every step and by the PostgreSQL race test at its end."""

from collections import Counter
from decimal import Decimal

from django.db.models import F

from closeout.approvals.models import CloseRequest, RequestAction, RequestState
from closeout.audit.models import AuditEvent
from closeout.closing.dimensions import closed_dimensions, dimension_states, dimensions_of
from closeout.closing.models import LineDimensionClose
from closeout.closing.selectors import open_commitments_by_item
from closeout.core.models import Item
from closeout.documents.models import (
    BusinessEvent,
    CloseState,
    DocType,
    Document,
    EventKind,
    EventStatus,
    Line,
)

S = CloseState
PO = DocType.PURCHASE_ORDER
MEASURES = ("fulfilled_qty", "invoiced_qty", "invoiced_amount", "settled_amount")


def check_headers_and_lines(
    document_ids: list[int], closed_at_hold: dict[int, set[int]] | None = None
) -> None:
    """A header is closed (or waits for a reopen) exactly when every line is closed or
    archived, and archived exactly when every line is; lines wait or are held only under an open
    or held header; while held, no line closes that was not closed before the hold."""
    for document in Document.objects.filter(pk__in=document_ids):
        lines = dict(document.lines.values_list("line_no", "close_state"))
        states = set(lines.values())
        header = document.close_state
        all_closed = states <= {S.CLOSED, S.ARCHIVED}
        assert (header in (S.CLOSED, S.REOPEN_PENDING, S.ARCHIVED)) == all_closed, (header, lines)
        assert (header == S.ARCHIVED) == (states == {S.ARCHIVED}), (header, lines)
        if S.CLOSE_PENDING in states or S.ON_HOLD in states:
            assert header in (S.OPEN, S.ON_HOLD), (header, lines)
        if header == S.ON_HOLD and closed_at_hold is not None:
            closed = {n for n, s in lines.items() if s == S.CLOSED}
            assert closed <= closed_at_hold.get(document.pk, set()), (closed, lines)


def check_dimensions(document_ids: list[int]) -> None:
    """A closed line is closed in every dimension; a line closed in every dimension is closed
    (the table never holds a line's last dimension while the line is open); a line closed for
    receiving has no receipt or return applied after that close."""
    count = len(dimensions_of(PO))
    lines = Line.objects.filter(document_id__in=document_ids).select_related("document")
    closed = closed_dimensions([line.pk for line in lines])
    for line in lines:
        mine = closed.get(line.pk, set())
        states = dimension_states(line.document.doc_type, line, mine)
        whole = line.close_state in (S.CLOSED, S.ARCHIVED)
        assert (set(states.values()) == {S.CLOSED}) == whole, (line.line_no, states, whole)
        assert whole or len(mine) < count, (line.line_no, mine)
    after_close = BusinessEvent.objects.filter(
        line__dimension_closes__dimension="receiving",
        applied_at__gt=F("line__dimension_closes__closed_at"),
        kind__in=(EventKind.RECEIPT, EventKind.RETURN),
        status=EventStatus.APPLIED,
        line__close_state=S.OPEN,
        document_id__in=document_ids,
    )
    assert not after_close.exists(), list(after_close.values_list("external_id", flat=True))


def check_requests_and_states(document_ids: list[int]) -> None:
    """Invariant 7: a pending request exists exactly while its document (or lines) waits in the
    matching pending state; one pending request per document or line."""
    pending = list(
        CloseRequest.objects.filter(document_id__in=document_ids, state=RequestState.PENDING)
    )
    for document in Document.objects.filter(pk__in=document_ids):
        mine = [r for r in pending if r.document_id == document.pk]
        whole = [r for r in mine if r.action == RequestAction.CLOSE and r.line_nos is None]
        reopen = [r for r in mine if r.action == RequestAction.REOPEN]
        assert (document.close_state == S.CLOSE_PENDING) == (len(whole) == 1), document.label
        assert (document.close_state == S.REOPEN_PENDING) == (len(reopen) == 1), document.label
        assert len(whole) <= 1 and len(reopen) <= 1
        requested = Counter(
            n
            for r in mine
            if r.action == RequestAction.CLOSE and r.line_nos is not None
            for n in r.line_nos
        )
        waiting = set(
            document.lines.filter(close_state=S.CLOSE_PENDING).values_list("line_no", flat=True)
        )
        assert set(requested) == waiting, (document.label, requested, waiting)
        assert all(c == 1 for c in requested.values())


def replay_audit(replayed: dict[int, str], *, after_seq: int = 0) -> int:
    """Replay the documents' close states from their audit events after `after_seq`: each
    event starts from the state the log says the document was in, and the replayed state is
    the state in the database; returns the last sequence read."""
    last = after_seq
    changes: Counter[int] = Counter()
    for event in AuditEvent.objects.filter(
        seq__gt=after_seq, object_type="document", object_id__in=[str(pk) for pk in replayed]
    ).order_by("seq"):
        last = event.seq
        if "to" not in event.data:
            continue
        pk = int(event.object_id)
        assert event.data["from"] == replayed[pk], (event.seq, event.data, replayed[pk])
        if event.data["to"] != event.data["from"]:
            changes[pk] += 1
        replayed[pk] = event.data["to"]
    for pk, state in Document.objects.filter(pk__in=replayed).values_list("pk", "close_state"):
        assert replayed[pk] == state, (pk, replayed[pk], state)
    return max(last, AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0)


def check_events_and_measures(document_ids: list[int], *, posted: int) -> None:
    """No business event lost (every accepted one is stored, applied or quarantined or pending),
    and each line's measures are the sum of its applied events."""
    events = BusinessEvent.objects.filter(document_id__in=document_ids)
    assert events.count() == posted
    assert set(events.values_list("status", flat=True)) <= {
        EventStatus.APPLIED,
        EventStatus.QUARANTINED,
        EventStatus.PENDING,
    }
    expected: dict[tuple[int, int], dict[str, Decimal]] = {}
    for event in events.filter(status=EventStatus.APPLIED).select_related("line"):
        measures = expected.setdefault(
            (event.document_id, event.line.line_no), dict.fromkeys(MEASURES, Decimal(0))
        )
        if event.kind == EventKind.RECEIPT:
            measures["fulfilled_qty"] += event.quantity
        elif event.kind == EventKind.RETURN:
            measures["fulfilled_qty"] -= event.quantity
        elif event.kind == EventKind.INVOICE:
            measures["invoiced_qty"] += event.quantity
            measures["invoiced_amount"] += event.amount
        elif event.kind == EventKind.PAYMENT:
            measures["settled_amount"] += event.amount
    for line in Line.objects.filter(document_id__in=document_ids):
        want = expected.get((line.document_id, line.line_no), {})
        for field in MEASURES:
            assert (getattr(line, field) or 0) == want.get(field, 0), (line.line_no, field)


def check_commitments(document_ids: list[int], item: Item) -> None:
    """A closed line releases exactly its open quantity, an open one nothing, unless it is
    closed for receiving: then that close released exactly its open quantity (no receipt or
    return moved it since); the open commitments of the item equal their recomputation."""
    open_qty = Decimal(0)
    receiving = dict(
        LineDimensionClose.objects.filter(
            document_id__in=document_ids, dimension="receiving"
        ).values_list("line_id", "released_qty")
    )
    for line in Line.objects.filter(document_id__in=document_ids):
        remainder = max(line.planned_qty - line.fulfilled_qty, Decimal(0))
        if line.close_state in (S.CLOSED, S.ARCHIVED):
            assert line.released_qty == remainder, line.line_no
        else:
            assert line.released_qty == 0, line.line_no
            if line.pk in receiving:
                assert receiving[line.pk] == remainder, (line.line_no, receiving[line.pk])
            else:
                open_qty += remainder
    commitment = open_commitments_by_item([item.pk]).get(item.pk)
    assert (commitment.on_order if commitment else Decimal(0)) == open_qty
