"""Import of close instructions (S18): validation per row changes nothing and says what is
wrong where; execution runs only the valid rows as one batch job, each row all-or-nothing,
safe to run twice; permissions, audit, encodings, the template and the CLI."""

import csv
import io
from collections.abc import Sequence
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.import_files import Table
from closeout.batches.import_template import import_template
from closeout.batches.imports import (
    COLUMNS,
    import_check,
    import_execute,
    import_validate,
    map_columns,
    report_table,
)
from closeout.batches.models import BatchAction, BatchState, ImportFile, ItemState
from closeout.batches.selectors import batch_results
from closeout.closing.services import document_close
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import CloseState, Document, EventKind
from closeout.reports.models import PostCloseVerification
from tests.factories import (
    PO,
    SO,
    Org,
    make_document,
    post,
    ready_document,
    rolled_back,
    user_with_role,
)
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db

HEADERS = [c.header for c in COLUMNS]


# --- helpers shared by the other import test modules -----------------------------------------


def csv_bytes(
    rows: Sequence[Sequence[Any]], *, headers: Sequence[str] = HEADERS, encoding: str = "utf-8"
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: Sequence[Sequence[Any]], *, headers: Sequence[str] = HEADERS) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def validate(actor: User, content: bytes, name: str = "instructions.csv") -> ImportFile:
    return import_validate(actor=actor, upload=io.BytesIO(content), file_name=name)


def errors_of(imported: ImportFile) -> dict[int, list[tuple[str, str]]]:
    return {r["r"]: [(c, m) for c, m in r["e"]] for r in imported.report["rows"] if r["e"]}


def short(document: Document) -> Document:
    """Half received: the `received` exception rule fails on line 1."""
    post(document, EventKind.RECEIPT, 1, 5)
    return document


@pytest.fixture(autouse=True)
def _inline_tasks(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""


@pytest.fixture
def buyer(org: Org) -> User:
    """Operator over the purchasing department only: close, request, import; no reopen."""
    return user_with_role("imp-buyer", "operator", org.dept_a)


@pytest.fixture
def boss(org: Org) -> User:
    """Supervisor over the company: includes operator, may reopen directly."""
    return user_with_role("imp-boss", "supervisor", org.company)


def run_inline(django_capture_on_commit_callbacks: Any, fn: Any) -> Any:
    with django_capture_on_commit_callbacks(execute=True):
        return fn()


# --- the happy path --------------------------------------------------------------------------


def test_validate_then_execute_closes_documents_and_lines_with_audit(
    org: Org, buyer: User, django_capture_on_commit_callbacks: Any
) -> None:
    whole = ready_document(PO, org.dept_a)
    lines = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    exception = short(make_document(PO, org.dept_a))
    content = xlsx_bytes(
        [
            [
                "采购订单 purchase_order",
                whole.number,
                "",
                "结案 close",
                "正常完成 completed",
                "",
                "",
            ],
            ["purchase_order", lines.number, "1", "close", "completed", "", ""],
            [
                "purchase_order",
                exception.number,
                "",
                "close",
                "short_delivery_accepted",
                "供应商只交一半",
                (timezone.localdate() - timedelta(days=1)).isoformat(),
            ],
        ]
    )
    before = AuditEvent.objects.count()
    imported = validate(buyer, content, "close.xlsx")
    assert (imported.total_rows, imported.valid_rows, imported.error_rows) == (3, 3, 0)
    assert imported.file_format == "xlsx"
    # Validation changed no document, and recorded itself once.
    assert Document.objects.filter(close_state=CloseState.CLOSED).count() == 0
    validated = AuditEvent.objects.filter(seq__gt=before)
    assert [e.action for e in validated] == [AuditAction.IMPORT_VALIDATED]
    assert validated[0].data["sha256"] == imported.sha256
    assert validated[0].data["file_name"] == "close.xlsx"
    assert (validated[0].data["rows"], validated[0].data["valid_rows"]) == (3, 3)

    job = run_inline(
        django_capture_on_commit_callbacks,
        lambda: import_execute(actor=buyer, import_file=imported),
    )
    job.refresh_from_db()
    assert job.action == BatchAction.IMPORT and job.state == BatchState.DONE
    assert (job.total, job.succeeded, job.failed, job.skipped) == (3, 3, 0, 0)
    whole.refresh_from_db()
    lines.refresh_from_db()
    exception.refresh_from_db()
    assert whole.close_state == CloseState.CLOSED and whole.close_reason == "completed"
    assert lines.close_state == CloseState.OPEN
    assert dict(lines.lines.values_list("line_no", "close_state")) == {
        1: CloseState.CLOSED,
        2: CloseState.OPEN,
    }
    assert exception.close_state == CloseState.CLOSED
    assert exception.close_remark == "供应商只交一半"
    assert exception.close_date == timezone.localdate() - timedelta(days=1)
    items = {i.row_no: i for i in batch_results(job)}
    assert items[2].outcome == "closed" and items[3].outcome == "lines_closed"
    assert items[3].params["line_nos"] == [1]
    actions = list(
        AuditEvent.objects.filter(seq__gt=validated[0].seq).values_list("action", flat=True)
    )
    assert actions[:2] == [AuditAction.IMPORT_EXECUTED, AuditAction.BATCH_STARTED]
    # The finished batch is verified after it (reports.verification).
    assert actions[-2:] == [AuditAction.BATCH_FINISHED, AuditAction.POST_CLOSE_VERIFIED]
    assert PostCloseVerification.objects.get(job=job).passed
    assert sorted(actions[2:-2]) == sorted(
        [AuditAction.LINES_CLOSED, AuditAction.DOCUMENT_CLOSED, AuditAction.DOCUMENT_CLOSED]
    )
    assert audit_chain_verify().intact


def test_running_twice_changes_nothing(
    org: Org, buyer: User, django_capture_on_commit_callbacks: Any
) -> None:
    document = ready_document(PO, org.dept_a)
    content = csv_bytes([[PO, document.number, "", "close", "completed", "", ""]])
    imported = validate(buyer, content)
    run_inline(
        django_capture_on_commit_callbacks,
        lambda: import_execute(actor=buyer, import_file=imported),
    )
    events = AuditEvent.objects.count()
    with pytest.raises(InvalidInput, match="already executed as batch"):
        import_execute(actor=buyer, import_file=imported)
    # The same file again: its row is now refused as already closed, and nothing runs.
    again = validate(buyer, content)
    assert errors_of(again) == {
        2: [("number", f"purchase_order {document.number} is already closed; nothing to close")]
    }
    with pytest.raises(InvalidInput, match="no valid row"):
        import_execute(actor=buyer, import_file=again)
    assert AuditEvent.objects.count() == events + 1  # only the second validation


def test_a_row_closed_after_validation_gets_its_own_result(
    org: Org, buyer: User, django_capture_on_commit_callbacks: Any
) -> None:
    first, second = ready_document(PO, org.dept_a), ready_document(PO, org.dept_a)
    imported = validate(
        buyer,
        csv_bytes(
            [
                [PO, first.number, "", "close", "completed", "", ""],
                [PO, second.number, "", "close", "completed", "", ""],
            ]
        ),
    )
    document_close(actor=buyer, document=first, reason_code="completed")
    job = run_inline(
        django_capture_on_commit_callbacks,
        lambda: import_execute(actor=buyer, import_file=imported),
    )
    job.refresh_from_db()
    assert (job.succeeded, job.skipped) == (1, 1)
    skipped = batch_results(job).get(row_no=2)
    assert skipped.state == ItemState.SKIPPED
    assert "is closed now, not open as when the file was validated" in skipped.message


def test_reopen_and_request_rows_run_with_their_own_parameters(
    org: Org, boss: User, django_capture_on_commit_callbacks: Any
) -> None:
    from tests.approvals.conftest import make_route

    closed = ready_document(PO, org.dept_a)
    document_close(actor=boss, document=closed, reason_code="completed")
    make_route("例外 exception", condition="exception")
    wanted = short(make_document(PO, org.dept_a, ((10, 5), (4, 2))))
    imported = validate(
        boss,
        csv_bytes(
            [
                [PO, closed.number, "", "reopen", "wrong_close", "closed too early", ""],
                [PO, wanted.number, "1", "request", "short_delivery_accepted", "half", ""],
            ]
        ),
    )
    assert imported.valid_rows == 2, errors_of(imported)
    notes = {r["r"]: r["n"] for r in imported.report["rows"]}
    assert "reopens" in notes[2] and "approval route '例外 exception'" in notes[3]
    job = run_inline(
        django_capture_on_commit_callbacks,
        lambda: import_execute(actor=boss, import_file=imported),
    )
    closed.refresh_from_db()
    wanted.refresh_from_db()
    assert closed.close_state == CloseState.OPEN
    assert dict(wanted.lines.values_list("line_no", "close_state")) == {
        1: CloseState.CLOSE_PENDING,
        2: CloseState.OPEN,
    }
    outcomes = {i.row_no: i.outcome for i in batch_results(job)}
    assert outcomes == {2: "reopened", 3: "requested"}


def test_whole_document_request_rows_run_as_one_bulk_submit(
    org: Org, boss: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Request rows of a chunk go through `close_requests_submit` together: a row whose route
    applies waits for approval, a route-less one closes at once, and a row the submit refuses
    (its document changed since validation) fails alone with the reason."""
    from closeout.approvals.models import CloseRequest
    from tests.approvals.conftest import make_route

    make_route("例外 exception", condition="exception")
    waits = short(make_document(PO, org.dept_a))
    closes = ready_document(PO, org.dept_a)
    changes = ready_document(PO, org.dept_a)
    imported = validate(
        boss,
        csv_bytes(
            [
                [PO, waits.number, "", "request", "short_delivery_accepted", "short", ""],
                [PO, closes.number, "", "request", "completed", "", ""],
                [PO, changes.number, "", "request", "completed", "", ""],
            ]
        ),
    )
    assert imported.valid_rows == 3, errors_of(imported)
    # After validation the third document gets a pending receipt: a blocking rule fails now.
    post(changes, EventKind.RECEIPT, 1, 1, pending=True)
    job = run_inline(
        django_capture_on_commit_callbacks,
        lambda: import_execute(actor=boss, import_file=imported),
    )
    results = {i.row_no: i for i in batch_results(job)}
    assert {n: i.outcome for n, i in results.items()} == {2: "requested", 3: "closed", 4: "refused"}
    assert results[4].state == ItemState.FAILED and changes.number in results[4].message
    assert "no approval route applied, closed at once" in results[3].message
    waits.refresh_from_db()
    closes.refresh_from_db()
    changes.refresh_from_db()
    assert waits.close_state == CloseState.CLOSE_PENDING
    assert closes.close_state == CloseState.CLOSED
    assert changes.close_state == CloseState.OPEN
    assert not CloseRequest.objects.filter(document=changes).exists()
    job.refresh_from_db()
    assert (job.succeeded, job.failed) == (2, 1)


# --- row errors ------------------------------------------------------------------------------


def test_every_row_error_names_its_column_in_plain_words(org: Org, boss: User) -> None:
    ready = ready_document(PO, org.dept_a)
    exception = short(make_document(PO, org.dept_a))
    blocked = make_document(PO, org.dept_a)
    post(blocked, EventKind.RECEIPT, 1, 10, pending=True)
    closed = ready_document(PO, org.dept_a)
    document_close(actor=boss, document=closed, reason_code="completed")
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    rows = [
        ["invoice", ready.number, "", "close", "completed", "", ""],  # 2
        [PO, "NO-SUCH-PO", "", "close", "completed", "", ""],  # 3
        [PO, ready.number, "7", "close", "completed", "", ""],  # 4
        [PO, closed.number, "", "close", "completed", "", ""],  # 5
        [PO, ready.number, "", "reopen", "wrong_close", "", ""],  # 6
        [PO, blocked.number, "", "close", "completed", "x", ""],  # 7
        [PO, exception.number, "", "close", "completed", "", ""],  # 8
        [PO, ready.number, "", "close", "completed", "", "2026-02-30"],  # 9
        [PO, ready.number, "", "close", "completed", "", future],  # 10
        [PO, ready.number, "", "finish", "completed", "", ""],  # 11
        [PO, ready.number, "", "close", "no_such_reason", "", ""],  # 12
        [PO, ready.number, "", "close", "wrong_close", "", ""],  # 13
        [PO, "", "", "close", "", "", ""],  # 14
        [PO, ready.number, "one,two", "close", "completed", "", ""],  # 15
    ]
    imported = validate(boss, csv_bytes(rows))
    errors = errors_of(imported)
    assert imported.valid_rows == 0 and imported.error_rows == len(rows)

    def only(row: int) -> tuple[str, str]:
        assert len(errors[row]) == 1, errors[row]
        return errors[row][0]

    assert only(2)[0] == "doc_type" and "unknown document type 'invoice'" in only(2)[1]
    assert only(3) == ("number", "unknown document: no purchase_order numbered NO-SUCH-PO")
    assert only(4) == (
        "lines",
        f"unknown line number: purchase_order {ready.number} has no line 7",
    )
    assert only(5)[0] == "number" and "is already closed" in only(5)[1]
    assert only(6)[0] == "number" and "is not closed (it is open)" in only(6)[1]
    assert only(7)[0] == "number"
    assert "blocking rule failed" in only(7)[1] and "events_settled" in only(7)[1]
    assert only(8)[0] == "remark"
    assert "exception rule failed" in only(8)[1] and "received" in only(8)[1]
    assert "a remark explaining the exception is required" in only(8)[1]
    assert only(9) == ("close_date", "'2026-02-30' is not a date; write it as YYYY-MM-DD")
    assert only(10) == ("close_date", f"close date {future} is in the future")
    assert only(11)[0] == "action" and "unknown action 'finish'" in only(11)[1]
    assert only(12)[0] == "reason" and "unknown reason code 'no_such_reason'" in only(12)[1]
    assert only(13)[0] == "reason"
    assert "'wrong_close' is a reopen reason, not valid for close" in only(13)[1]
    assert {c for c, _m in errors[14]} == {"number", "reason"}
    assert all("is missing: it is required" in m for _c, m in errors[14])
    assert only(15)[0] == "lines" and "is not a list of line numbers" in only(15)[1]
    assert Document.objects.filter(close_state=CloseState.CLOSED).count() == 1


def test_duplicate_and_overlapping_rows_point_at_the_first(org: Org, buyer: User) -> None:
    document = ready_document(PO, org.dept_a, ((10, 5), (4, 2), (3, 1)))
    other = ready_document(PO, org.dept_a)
    imported = validate(
        buyer,
        csv_bytes(
            [
                [PO, document.number, "1", "close", "completed", "", ""],  # 2
                [PO, document.number, "2,3", "close", "completed", "", ""],  # 3 fine
                [PO, document.number, "1", "close", "completed", "", ""],  # 4 duplicate
                [PO, document.number, "3", "close", "completed", "", ""],  # 5 overlaps 3
                [PO, other.number, "", "close", "completed", "", ""],  # 6
                [PO, other.number, "", "close", "contract_terminated", "x", ""],  # 7
            ]
        ),
    )
    assert errors_of(imported) == {
        4: [("number", "duplicate row: the same document and lines as row 2")],
        5: [("lines", "row 3 already takes line 3 of this document")],
        7: [("number", "duplicate row: the same document and lines as row 6")],
    }


def test_permissions_import_run_and_the_rows_own_permission(org: Org, buyer: User) -> None:
    auditor = user_with_role("imp-auditor", "auditor", org.company)
    elsewhere = ready_document(SO, org.dept_b)
    mine = ready_document(PO, org.dept_a)
    content = csv_bytes(
        [
            [SO, elsewhere.number, "", "close", "completed", "", ""],
            [PO, mine.number, "", "reopen", "wrong_close", "x", ""],
        ]
    )
    events = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied, match=r"import\.run"):
        validate(auditor, content)
    assert AuditEvent.objects.count() == events and not ImportFile.objects.exists()
    document_close(actor=buyer, document=mine, reason_code="completed")
    imported = validate(buyer, content)
    errors = errors_of(imported)
    # A document outside the uploader's scope is reported like a missing one (issue 12).
    assert errors[2] == [
        ("number", f"unknown document: no sales_order numbered {elsewhere.number}")
    ]
    # The operator may request a reopen but not reopen directly; with no reopen route, the row
    # says why it cannot run.
    assert errors[3][0][0] == "action"
    assert "no reopen approval route is configured" in errors[3][0][1]


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030")],
)
def test_csv_in_utf8_utf8_bom_and_gbk_reads_chinese_remarks(
    org: Org, buyer: User, encoding: str, expected: str
) -> None:
    document = short(make_document(PO, org.dept_a))
    remark = "供应商停产，余量取消"
    content = csv_bytes(
        [["采购订单", document.number, "", "结案", "接受短交", remark, ""]],
        headers=["单据类型", "单号", "行号", "动作", "原因代码", "备注", "结案日期"],
        encoding=encoding,
    )
    imported = validate(buyer, content)
    assert imported.encoding == expected
    assert imported.valid_rows == 1, errors_of(imported)
    row = imported.report["rows"][0]
    assert row["p"]["remark"] == remark and row["p"]["reason_code"] == "short_delivery_accepted"


def test_headers_in_english_only_any_case_are_accepted(org: Org, buyer: User) -> None:
    document = ready_document(PO, org.dept_a)
    content = csv_bytes(
        [[PO, document.number, "close", "completed"]],
        headers=["Document Type", "NUMBER", "action", "Reason code"],
    )
    assert validate(buyer, content).valid_rows == 1


# --- the report ------------------------------------------------------------------------------


def test_report_download_neutralises_formulas_and_keeps_the_uploaded_columns(
    org: Org, buyer: User
) -> None:
    from openpyxl import load_workbook

    from closeout.core.exports import write_xlsx

    document = ready_document(PO, org.dept_a)
    imported = validate(
        buyer,
        csv_bytes(
            [
                [PO, document.number, "", "close", "completed", '=HYPERLINK("http://x","y")', ""],
                [PO, "@SUM(1+1)", "", "close", "completed", "", ""],
            ]
        ),
    )
    headers, rows = report_table(imported)
    buffer = io.BytesIO()
    write_xlsx(headers, rows, buffer)
    sheet = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == [*HEADERS, "行 row", "结果 result", "出错列 column", "说明 message"]
    result = len(HEADERS) + 1  # after the uploaded columns and the row number
    assert values[1][5] == '\'=HYPERLINK("http://x","y")' and values[1][result] == "ok"
    assert values[2][1] == "'@SUM(1+1)" and values[2][result] == "error"
    assert values[2][result + 1] == "单号 number"
    assert "unknown document" in str(values[2][result + 2])


# --- arbitrary cells never break validation --------------------------------------------------

CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["purchase_order", "close", "reopen", "completed", "1,2", "2026-01-01", ""]),
    st.integers(min_value=-5, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.booleans(),
)
KNOWN_COLUMNS = {c.key for c in COLUMNS}


@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=7), min_size=1, max_size=6))
def test_validation_gives_a_clean_verdict_per_row_for_any_cells(
    org: Org, buyer: User, rows: list[list[Any]]
) -> None:
    with rolled_back():
        ready_document(PO, org.dept_a, number="PO-HYPO-1")
        table = Table(list(HEADERS), [(i + 2, row) for i, row in enumerate(rows)], "xlsx")
        keys = map_columns(table)
        checks = import_check(actor=buyer, table=table, keys=keys)
        assert [c.row for c in checks] == [i + 2 for i in range(len(rows))]
        for check in checks:
            assert check.ok or check.errors
            for column, message in check.errors:
                assert column in KNOWN_COLUMNS and isinstance(message, str) and message
            if check.ok:
                assert check.document is not None and check.outcome


# --- the template ----------------------------------------------------------------------------


def test_the_template_has_lists_instructions_and_reads_back(org: Org, buyer: User) -> None:
    from openpyxl import load_workbook

    from closeout.closing.models import ReasonCode

    ReasonCode.objects.create(
        code="site_closed", action="close", label_zh="工地关闭", label_en="Site closed"
    )
    workbook = load_workbook(io.BytesIO(import_template("xlsx")))
    data, notes, codes = workbook.worksheets
    assert [c.value for c in data[1]] == HEADERS
    assert "instructions" in notes.title and codes.sheet_state == "hidden"
    lists = {str(v.sqref)[0]: v for v in data.data_validations.dataValidation}
    assert {"A", "D", "E", "G"} <= set(lists)
    reason_cells = [c.value for c in codes["C"][1:] if c.value]
    assert (
        "工地关闭 site_closed" in reason_cells and "系统自动结案 auto_rules_met" not in reason_cells
    )
    csv_text = import_template("csv").decode("utf-8")
    assert csv_text.startswith("\ufeff单据类型 document type,单号 number")
    # The filled-in template validates.
    document = ready_document(PO, org.dept_a)
    data.append(
        [
            "采购订单 purchase_order",
            document.number,
            None,
            "结案 close",
            "工地关闭 site_closed",
            None,
            None,
        ]
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    imported = validate(buyer, buffer.getvalue(), "template.xlsx")
    assert imported.valid_rows == 1, errors_of(imported)


# --- the command line ------------------------------------------------------------------------


def test_cli_template_validate_and_run(
    org: Org, buyer: User, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    document = ready_document(PO, org.dept_a)
    out = StringIO()
    call_command(
        "import", "template", "--format", "csv", "--out", str(tmp_path / "t.csv"), stdout=out
    )
    assert (tmp_path / "t.csv").read_text(encoding="utf-8-sig").startswith("单据类型")
    source = tmp_path / "close.csv"
    source.write_bytes(
        csv_bytes(
            [
                [PO, document.number, "", "close", "completed", "", ""],
                [PO, "NOPE", "", "close", "completed", "", ""],
            ]
        )
    )
    out = StringIO()
    call_command(
        "import",
        "validate",
        str(source),
        "--as",
        "imp-buyer",
        "--report",
        str(tmp_path / "r.xlsx"),
        stdout=out,
    )
    text = out.getvalue()
    assert "2 rows, 1 valid, 1 with errors" in text and "no purchase_order numbered NOPE" in text
    assert (tmp_path / "r.xlsx").stat().st_size > 0
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import", "run", str(source), "--as", "imp-buyer", stdout=out)
    # (On the console the batch runs before the results print; here the test's transaction
    # holds it back until the command returns.)
    assert "running the 1 valid rows; the 1 rows with errors are not run" in out.getvalue()
    assert "batch #" in out.getvalue()
    imported = ImportFile.objects.latest("pk")
    assert imported.job is not None and imported.job.state == BatchState.DONE
    document.refresh_from_db()
    assert document.close_state == CloseState.CLOSED
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"%PDF-1.7 not a sheet")
    with pytest.raises(CommandError, match=r"it is a PDF document renamed \.xlsx"):
        call_command("import", "validate", str(bad), "--as", "imp-buyer")


def test_an_import_run_reads_in_the_page_language(
    org: Org, buyer: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The result of each row on the batch page is in Chinese on the Chinese page (the API and
    the CSV keep the English): lines closed, a line already closed, nothing in English."""
    lines = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    closed = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    imported = validate(
        buyer,
        csv_bytes(
            [
                [PO, lines.number, "1", "close", "completed", "", ""],
                [PO, closed.number, "2", "close", "completed", "", ""],
            ]
        ),
    )
    document_close(actor=buyer, document=closed, reason_code="completed", line_nos=[2])
    job = run_inline(
        django_capture_on_commit_callbacks,
        lambda: import_execute(actor=buyer, import_file=imported),
    )
    results = {i.row_no: i for i in batch_results(job)}
    assert results[2].message == "lines closed: 1"
    assert results[3].message == f"{PO} {closed.number}: line 2 already closed; nothing done"
    page = signed_in(buyer, "zh-hans").get(f"/batches/{job.pk}/").content.decode()
    assert "已结案的行：1" in page
    assert f"采购订单 {closed.number}：行 2 已结案，未做任何操作" in page
    assert "lines closed" not in page and "nothing done" not in page
