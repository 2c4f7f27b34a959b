"""Import of close instructions with a close dimension (结案维度, issue 16) and the set-based
execution of line closes (issue 13): a dimension row closes the named lines (or every line open
in it) in that dimension only, through the dimension close service; validation says per row
what is wrong (unknown dimension for the type, already closed, line closed); line-close rows
close in bulk with one audit event per document, and a refused row does not take its chunk
down."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.import_template import dimension_choices, import_template
from closeout.batches.imports import import_execute
from closeout.batches.models import ItemState
from closeout.batches.selectors import batch_results
from closeout.closing.dimension_services import line_dimension_close
from closeout.closing.dimensions import closed_dimensions
from closeout.closing.services import document_close
from closeout.documents.models import CloseState, Document, EventKind, Line
from closeout.reports.models import PostCloseVerification
from tests.batches.test_imports import (
    HEADERS,
    csv_bytes,
    errors_of,
    run_inline,
    short,
    validate,
)
from tests.factories import PO, SO, Org, audit_head, make_document, post, ready_document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_tasks(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""


def _row(
    doc: Document, lines: str, dimension: str, *, remark: str = "", action: str = "close"
) -> list[str]:
    return [doc.doc_type, doc.number, lines, action, "completed", remark, "", "", dimension]


def _closed_dims(document: Document) -> dict[int, set[str]]:
    lines = dict(Line.objects.filter(document=document).values_list("pk", "line_no"))
    return {lines[pk]: codes for pk, codes in closed_dimensions(list(lines)).items()}


def test_the_template_has_the_dimension_column_and_its_list() -> None:
    assert HEADERS[-1] == "结案维度 close dimension"
    assert "收货 receiving" in dimension_choices() and "收款 collection" in dimension_choices()
    assert "结案维度 close dimension" in import_template("csv").decode("utf-8-sig")


def test_dimension_rows_close_that_dimension_only(
    org: Org, supervisor: User, django_capture_on_commit_callbacks: Any
) -> None:
    one = make_document(PO, org.dept_a, ((10, 5), (4, 2)))
    post(one, EventKind.RECEIPT, 1, 10)
    every = make_document(PO, org.dept_a, ((10, 5), (4, 2)))
    post(every, EventKind.RECEIPT, 1, 10)
    post(every, EventKind.RECEIPT, 2, 4)
    sales = make_document(SO, org.dept_a, ((3, 1),))
    imported = validate(
        supervisor,
        csv_bytes(
            [
                _row(one, "1", "收货关闭"),  # the Chinese name of the closed state
                _row(every, "", "receiving"),  # every line open in it
                _row(every, "", "开票 invoicing", remark="invoices come later"),
                _row(sales, "1", "发货", remark="shipped in full elsewhere"),
            ]
        ),
    )
    assert imported.valid_rows == 4, errors_of(imported)
    notes = {r["r"]: (r["o"], r["n"]) for r in imported.report["rows"]}
    assert notes[2] == ("would_close_dim", "closes line 1 for receiving")
    assert notes[3][1] == "closes every open line for receiving"
    seq = audit_head()
    job = run_inline(
        django_capture_on_commit_callbacks,
        lambda: import_execute(actor=supervisor, import_file=imported),
    )
    results = {i.row_no: (i.state, i.outcome, i.message) for i in batch_results(job)}
    assert results[2] == (ItemState.DONE, "close_dimension", "receiving: lines 1")
    assert results[3] == (ItemState.DONE, "close_dimension", "receiving: lines 1, 2")
    assert results[4][:2] == (ItemState.DONE, "close_dimension")
    assert results[5][:2] == (ItemState.DONE, "close_dimension")
    assert _closed_dims(one) == {1: {"receiving"}}
    assert _closed_dims(every) == {1: {"receiving", "invoicing"}, 2: {"receiving", "invoicing"}}
    assert _closed_dims(sales) == {1: {"shipping"}}
    # Lines and headers stay open: only the dimension closed.
    assert set(Line.objects.filter(document=every).values_list("close_state", flat=True)) == {
        CloseState.OPEN
    }
    dims = AuditEvent.objects.filter(seq__gt=seq, action=AuditAction.LINE_DIMENSIONS_CLOSED)
    assert dims.count() == 4
    assert audit_chain_verify().intact


def test_dimension_errors_per_row(org: Org, supervisor: User) -> None:
    po = make_document(PO, org.dept_a, ((10, 5), (4, 2)))
    post(po, EventKind.RECEIPT, 1, 10)
    done = make_document(PO, org.dept_a, ((10, 5),))
    post(done, EventKind.RECEIPT, 1, 10)
    half = make_document(PO, org.dept_a, ((10, 5), (4, 2)))
    post(half, EventKind.RECEIPT, 1, 10)
    post(half, EventKind.RECEIPT, 2, 4)
    document_close(
        actor=supervisor, document=half, reason_code="completed", remark="x", line_nos=[2]
    )
    line_dimension_close(
        actor=supervisor, document=done, dimension="receiving", reason_code="completed"
    )
    short_line = short(make_document(PO, org.dept_a))
    imported = validate(
        supervisor,
        csv_bytes(
            [
                _row(po, "1", "shipping"),  # 2: a sales-order dimension
                _row(done, "", "receiving"),  # 3: nothing open in it any more
                _row(done, "1", "收货"),  # 4: that line is closed for receiving
                _row(half, "2", "invoicing"),  # 5: line 2 is closed as a whole
                _row(po, "1", "receiving", action="request"),  # 6: a request takes none
                _row(short_line, "1", "receiving"),  # 7: received 5 of 10: needs a remark
                _row(po, "9", "payment"),  # 8: no line 9
            ]
        ),
    )
    errors = errors_of(imported)
    assert errors[2] == [
        (
            "dimension",
            "unknown close dimension 'shipping' for a purchase_order; use one of: "
            "receiving, invoicing, payment",
        )
    ]
    assert errors[3] == [("number", f"{done.label} has no line open for receiving")]
    assert errors[4] == [("lines", f"{done.label}: line 1 is already closed for receiving")]
    assert errors[5] == [("lines", f"{half.label}: line 2 is already closed")]
    assert errors[6][0][0] == "dimension" and "use the action close" in errors[6][0][1]
    assert errors[7][0][0] == "remark" and "receiving rules fail (lines 1)" in errors[7][0][1]
    assert errors[8] == [("lines", f"unknown line number: {po.label} has no line 9")]
    assert imported.valid_rows == 0


def test_line_closes_run_set_based_and_a_refused_row_keeps_its_chunk(
    org: Org, supervisor: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Twelve line-close rows: the plain ones close in bulk (one audit event per document with
    the lines and what they released), the last line of a document closes its header, and a
    row refused at run time (its line was closed in between) gets its own result."""
    docs = [ready_document(PO, org.dept_a, ((10, 5), (4, 2))) for _ in range(12)]
    rows = [[PO, d.number, "1", "close", "completed", "", ""] for d in docs]
    rows[0][2] = "1,2"  # every line: the header closes with them
    imported = validate(supervisor, csv_bytes(rows))
    assert imported.valid_rows == 12, errors_of(imported)
    document_close(actor=supervisor, document=docs[5], reason_code="completed", line_nos=[1])
    seq = audit_head()
    with CaptureQueriesContext(connection) as queries:
        job = run_inline(
            django_capture_on_commit_callbacks,
            lambda: import_execute(actor=supervisor, import_file=imported),
        )
    results = {i.row_no: (i.state, i.outcome, i.message) for i in batch_results(job)}
    assert results[2] == (ItemState.DONE, "closed", "lines closed: 1, 2")
    assert results[3] == (ItemState.DONE, "lines_closed", "lines closed: 1")
    assert results[7][:2] == (ItemState.SKIPPED, "skipped")
    assert sum(1 for s, _o, _m in results.values() if s == ItemState.DONE) == 11
    docs[0].refresh_from_db()
    assert docs[0].close_state == CloseState.CLOSED
    events = list(
        AuditEvent.objects.filter(
            seq__gt=seq, action__in=[AuditAction.LINES_CLOSED, AuditAction.DOCUMENT_CLOSED]
        )
    )
    assert sorted(e.action for e in events) == sorted(
        [AuditAction.DOCUMENT_CLOSED] + [AuditAction.LINES_CLOSED] * 10
    )
    data = next(e.data for e in events if e.object_id == str(docs[1].pk))
    assert [line["line"] for line in data["lines"]] == [1]
    assert data["lines"][0]["released_qty"] is not None and data["close_date"]
    assert PostCloseVerification.objects.get(job=job).passed
    # One query per row and less: the rows are not closed one by one (~15 queries each).
    assert len(queries) < 12 * 10, len(queries)
    assert audit_chain_verify().intact
