"""Bad files are refused as a whole with one clear message that says what is wrong and where,
and nothing is stored, audited or changed."""

import io
import struct
import zipfile
from typing import Any

import pytest
from django.contrib.auth.models import User
from hypothesis import given
from hypothesis import strategies as st

from closeout.audit.models import AuditEvent
from closeout.batches.import_files import MAX_ROWS, ImportFileRefused, read_table
from closeout.batches.models import ImportFile
from tests.batches.test_imports import HEADERS, csv_bytes, validate, xlsx_bytes
from tests.factories import Org, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer(org: Org) -> User:
    return user_with_role("files-buyer", "operator", org.dept_a)


def refused(buyer: User, content: bytes, name: str) -> str:
    events = AuditEvent.objects.count()
    with pytest.raises(ImportFileRefused) as caught:
        validate(buyer, content, name)
    assert AuditEvent.objects.count() == events and not ImportFile.objects.exists()
    return caught.value.message


ROW = ["purchase_order", "PO-1", "", "close", "completed", "", ""]


def test_not_a_spreadsheet(buyer: User) -> None:
    assert "it is a PDF document renamed .xlsx" in refused(buyer, b"%PDF-1.7\n...", "a.xlsx")
    random = bytes(range(256)) * 8
    assert "its content is not .xlsx" in refused(buyer, random, "b.xlsx")
    assert "cannot be read as text" in refused(buyer, bytes(range(128, 256)) * 4, "c.csv")
    assert "only .xlsx (Excel workbook) and .csv" in refused(buyer, b"hello", "d.pdf")
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    assert "not an Excel workbook (no xl/workbook.xml)" in refused(buyer, docx.getvalue(), "e.xlsx")


def _cfb(stream_name: str) -> bytes:
    """An OLE compound file header followed by a directory entry naming one stream."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    entry = stream_name.encode("utf-16-le").ljust(64, b"\x00")
    return header + entry + b"\x00" * 448


def test_password_protected_and_legacy_xls_are_told_apart(buyer: User) -> None:
    assert "is password-protected (encrypted)" in refused(buyer, _cfb("EncryptionInfo"), "p.xlsx")
    assert "legacy Excel 97-2003 workbook (.xls)" in refused(buyer, _cfb("Workbook"), "old.xls")


def test_macros_are_refused_by_extension_and_by_content(buyer: User) -> None:
    assert "macro-enabled" in refused(buyer, xlsx_bytes([ROW]), "m.xlsm")
    content = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx_bytes([ROW]))) as source,
        zipfile.ZipFile(content, "w") as target,
    ):
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("xl/vbaProject.bin", b"\x00" * 64)
    assert "contains macros (vbaProject.bin)" in refused(buyer, content.getvalue(), "m.xlsx")


def test_a_zip_bomb_is_refused_on_its_declared_size(buyer: User) -> None:
    content = bytearray(xlsx_bytes([ROW]))
    huge = 4_000_000_000
    # Patch the uncompressed size of every entry, in its local header and in the directory.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := content.find(signature, start)) != -1:
            struct.pack_into("<I", content, start + offset, huge)
            start += 4
    message = refused(buyer, bytes(content), "bomb.xlsx")
    assert "looks like a zip bomb" in message and "4,000,000,000 bytes uncompressed" in message


def test_a_formula_is_refused_naming_row_and_column(buyer: User) -> None:
    rows: list[list[Any]] = [list(ROW) for _ in range(6)]
    rows[5][5] = "=CONCAT(A2,B2)"
    message = refused(buyer, xlsx_bytes(rows), "f.xlsx")
    assert message.startswith("row 7, column 备注 remark (F7) holds a formula")


def test_merged_header_cells_are_refused(buyer: User) -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(xlsx_bytes([ROW])))
    sheet = workbook.active
    assert sheet is not None
    sheet.merge_cells("F1:G1")
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert "the header cells F1:G1 are merged" in refused(buyer, buffer.getvalue(), "h.xlsx")


def test_empty_files_and_files_without_data_rows(buyer: User) -> None:
    assert "is empty" in refused(buyer, b"", "e.csv")
    assert "no header row and no data rows" in refused(buyer, b"\n\n,,\n", "e.csv")
    assert "no data rows below it" in refused(buyer, csv_bytes([]), "h.csv")
    assert "no data rows below it" in refused(buyer, xlsx_bytes([]), "h.xlsx")


def test_missing_unknown_and_headerless_columns(buyer: User) -> None:
    message = refused(buyer, csv_bytes([ROW[:2]], headers=HEADERS[:2]), "m.csv")
    assert message.startswith("missing column(s): '动作 action', '原因代码 reason code'")
    after = chr(ord("A") + len(HEADERS))  # the column after the template's columns
    row = [*ROW, *[""] * (len(HEADERS) - len(ROW)), "x"]
    message = refused(buyer, csv_bytes([row], headers=[*HEADERS, "价格 price"]), "u.csv")
    assert message.startswith(f"unknown column '价格 price' (column {after} of the header row)")
    message = refused(buyer, csv_bytes([row], headers=[*HEADERS, ""]), "n.csv")
    assert message.startswith(f"column {after} holds values (row 2) but has no header")


def test_more_rows_than_the_limit_are_refused(buyer: User) -> None:
    content = csv_bytes([ROW] * (MAX_ROWS + 1))
    assert f"has more than {MAX_ROWS:,} data rows" in refused(buyer, content, "big.csv")


def test_a_million_rows_are_refused_without_reading_them_all(buyer: User) -> None:
    """Line ends are counted first; the records are read only up to the limit."""
    content = ",".join(HEADERS).encode() + b"\n" + b"a,b\n" * 1_000_000
    assert f"has more than {MAX_ROWS:,} data rows" in refused(buyer, content, "huge.csv")


@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=3000).map(lambda b: b"PK\x03\x04" + b),
        st.text(max_size=500).map(lambda t: t.encode("utf-8")),
    ),
    name=st.sampled_from(["a.csv", "a.xlsx", "a.txt", "a"]),
)
def test_any_bytes_are_read_or_refused_cleanly(data: bytes, name: str) -> None:
    try:
        table = read_table(io.BytesIO(data), name)
    except ImportFileRefused as refusal:
        assert refusal.message and refusal.details["field"] == "file"
    else:
        assert table.file_format in ("csv", "xlsx")


BASE_XLSX = xlsx_bytes([ROW, ROW])


@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(BASE_XLSX) - 1), st.integers(0, 255)), min_size=1, max_size=30
    )
)
def test_a_damaged_workbook_is_read_or_refused_cleanly(flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(BASE_XLSX)
    for position, value in flips:
        damaged[position] = value
    try:
        read_table(io.BytesIO(bytes(damaged)), "damaged.xlsx")
    except ImportFileRefused as refusal:
        assert refusal.message
