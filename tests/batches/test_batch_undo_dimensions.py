"""Batch undo (批量撤销) of close dimensions (关闭维度) and of imports naming one document in
several rows (issue 16): the undo reopens exactly what the batch closed — each dimension on the
lines it closed them on, lines it closed as a whole (their last dimension), every row's lines —
through the reopen path, restoring the released on-order quantity exactly, and skips with a
reason whatever changed after the batch."""

# The fixtures of test_batch_undo are imported, so the tests' parameters name them again.
# ruff: noqa: F811

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.imports import import_execute
from closeout.batches.models import BatchAction, BatchJob, BatchState, ItemState
from closeout.batches.selectors import batch_results
from closeout.batches.services import batch_create, batch_start
from closeout.closing.dimension_services import line_dimension_close
from closeout.closing.dimensions import closed_dimensions
from closeout.closing.selectors import open_commitments_by_item
from closeout.documents.models import CloseState, Document, EventKind, Line
from closeout.reports.verification import batch_verify
from tests.approvals.conftest import make_route
from tests.batches.test_batch_undo import (  # the fixtures and the undo
    _inline_tasks,  # noqa: F401
    boss,  # noqa: F401
    org,  # noqa: F401
    run_inline,  # noqa: F401
    undo,
)
from tests.batches.test_imports import csv_bytes, errors_of, validate
from tests.factories import PO, Org, an_item, make_document, post

pytestmark = pytest.mark.django_db


def received_po(org: Org, lines: tuple[tuple[int, int], ...] = ((10, 5), (8, 3))) -> Document:
    """Each line 6 received, invoiced and paid: closing receiving releases the rest on order."""
    document = make_document(PO, org.dept_a, lines, item=an_item("DIM-UNDO"))
    for line_no in range(1, len(lines) + 1):
        post(document, EventKind.RECEIPT, line_no, 6)
        post(document, EventKind.INVOICE, line_no, 6, 30)
        post(document, EventKind.PAYMENT, line_no, 0, 30)
    document.refresh_from_db()
    return document


def dimension_batch(
    actor: User, documents: list[Document], dimension: str, run_inline: Callable[..., Any]
) -> BatchJob:
    job = batch_create(
        actor=actor,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in documents],
        reason_code="short_delivery_accepted",
        remark="supplier stopped",
        dimension=dimension,
    )
    run_inline(lambda: batch_start(actor=actor, job=job))
    job.refresh_from_db()
    assert job.state == BatchState.DONE
    return job


def facts(document: Document) -> tuple[Any, ...]:
    """What an undo restores: the header's state and, per line, its state, what it released
    and the dimensions it is closed in (with what each released)."""
    document.refresh_from_db()
    lines = list(document.lines.order_by("line_no"))
    closed = closed_dimensions([line.pk for line in lines])
    return (
        document.close_state,
        document.released_value,
        [
            (line.line_no, line.close_state, line.released_qty, sorted(closed.get(line.pk, ())))
            for line in lines
        ],
    )


def on_order(document: Document) -> Decimal:
    item_id = document.lines.first().item_id  # type: ignore[union-attr]
    commitment = open_commitments_by_item([item_id]).get(item_id)
    return commitment.on_order if commitment else Decimal(0)


def test_a_dimension_batch_is_undone_and_the_on_order_quantity_comes_back(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    kept, changed = received_po(org), received_po(org)
    before = facts(kept)
    ordered = on_order(kept)
    job = dimension_batch(boss, [kept, changed], "receiving", run_inline)
    assert facts(kept)[2] == [(1, "open", 0, ["receiving"]), (2, "open", 0, ["receiving"])]
    assert on_order(kept) == ordered - 12  # both orders' 4 + 2 no longer on order
    assert (
        AuditEvent.objects.filter(
            action=AuditAction.LINE_DIMENSIONS_CLOSED, request_id=f"batch:{job.pk}"
        ).count()
        == 2
    )
    post(changed, EventKind.RECEIPT, 1, 1)  # quarantined: a new business event since

    undo_job = undo(boss, job, run_inline)
    assert undo_job.predicted == {"would_reopen": 1, "skipped": 1}
    assert (undo_job.succeeded, undo_job.skipped, undo_job.failed) == (1, 1, 0)
    assert batch_results(undo_job).get(document=changed).params["reason"] == "new_events"
    assert facts(kept) == before
    assert facts(changed)[2][0][3] == ["receiving"]
    assert on_order(kept) == ordered - 6  # kept's 6 back exactly, changed's still released
    event = AuditEvent.objects.get(
        action=AuditAction.LINE_DIMENSIONS_REOPENED, request_id=f"batch:{undo_job.pk}"
    )
    assert event.object_id == str(kept.pk)
    assert event.data["dimension"] == "receiving"
    assert event.data["lines"] == [
        {"line": 1, "restored_qty": "4.0000"},
        {"line": 2, "restored_qty": "2.0000"},
    ]
    assert batch_verify(job_id=undo_job.pk, actor=None).passed
    assert audit_chain_verify().intact


def test_a_dimension_batch_that_closed_lines_and_header_is_undone_exactly(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    """Invoicing and payment were closed by hand before: the batch closes the last dimension,
    so the lines (and the header) close as a whole; the undo reopens the header and the
    lines, leaving invoicing and payment closed as they were."""
    document = received_po(org)
    for dimension in ("invoicing", "payment"):
        line_dimension_close(
            actor=boss,
            document=document,
            dimension=dimension,
            reason_code="completed",
            remark="settled apart",
        )
    before = facts(document)
    ordered = on_order(document)
    job = dimension_batch(boss, [document], "receiving", run_inline)
    assert facts(document)[0] == CloseState.CLOSED
    assert on_order(document) == ordered - 6

    undo_job = undo(boss, job, run_inline)
    assert (undo_job.succeeded, undo_job.skipped, undo_job.failed) == (1, 0, 0)
    assert facts(document) == before
    assert on_order(document) == ordered
    assert AuditEvent.objects.filter(
        action=AuditAction.DOCUMENT_REOPENED, request_id=f"batch:{undo_job.pk}"
    ).exists()
    assert batch_verify(job_id=undo_job.pk, actor=None).passed
    assert audit_chain_verify().intact


def test_a_dimension_undo_under_a_reopen_route_or_in_a_closed_state_is_not_done(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    routed, held = received_po(org), received_po(org)
    job = dimension_batch(boss, [routed, held], "receiving", run_inline)
    from closeout.closing.services import document_hold

    document_hold(actor=boss, document=held, reason="dispute")
    make_route("undo reopen", action="reopen", steps=(("finance", "财务"),), doc_type=PO)
    undo_job = undo(boss, job, run_inline)
    reasons = {i.document_id: (i.state, i.params.get("reason")) for i in batch_results(undo_job)}
    assert reasons == {
        routed.pk: (ItemState.FAILED, "lines_route"),
        held.pk: (ItemState.SKIPPED, "on_hold"),
    }
    assert facts(routed)[2][0][3] == ["receiving"]


def _row(document: Document, lines: str, dimension: str = "") -> list[str]:
    number = document.number
    return [document.doc_type, number, lines, "close", "completed", "short", "", "", dimension]


def _import(actor: User, rows: list[list[str]], run_inline: Callable[..., Any]) -> BatchJob:
    imported = validate(actor, csv_bytes(rows))
    assert imported.valid_rows == len(rows), errors_of(imported)
    job: BatchJob = run_inline(lambda: import_execute(actor=actor, import_file=imported))
    job.refresh_from_db()
    assert job.state == BatchState.DONE
    assert job.succeeded == len(rows), [i.message for i in batch_results(job)]
    return job


def test_an_import_naming_a_document_in_several_rows_is_undone_whole(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    """Three lines closed by three rows: every row's lines reopen, not only the last row's;
    a document whose rows closed every line (the header closed with the last row) reopens
    whole; a row of another dimension on the same document reopens that dimension."""
    partly = received_po(org, ((10, 5), (8, 3), (6, 2)))
    whole = received_po(org)
    mixed = received_po(org)
    before = {d.pk: facts(d) for d in (partly, whole, mixed)}
    ordered = on_order(partly)
    rows = [
        _row(partly, "1"),
        _row(partly, "2"),
        _row(whole, "1"),
        _row(whole, "2"),
        _row(mixed, "1"),
        _row(mixed, "2", "receiving"),
    ]
    job = _import(boss, rows, run_inline)
    assert [line[1] for line in facts(partly)[2]] == ["closed", "closed", "open"]
    assert facts(whole)[0] == CloseState.CLOSED
    assert facts(mixed)[2] == [(1, "closed", 4, []), (2, "open", 0, ["receiving"])]

    undo_job = undo(boss, job, run_inline)
    assert (undo_job.total, undo_job.succeeded, undo_job.failed) == (3, 3, 0)
    for document in (partly, whole, mixed):
        assert facts(document) == before[document.pk], document.number
    assert on_order(partly) == ordered
    assert not Line.objects.filter(
        document__in=[partly, whole, mixed], close_state=CloseState.CLOSED
    ).exists()
    assert batch_verify(job_id=undo_job.pk, actor=None).passed
    assert audit_chain_verify().intact
