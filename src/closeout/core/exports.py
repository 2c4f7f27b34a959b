"""Tables written as .xlsx or CSV for download (S23): the one way every export is written."""

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput

FORMATS = ("xlsx", "csv")
# A cell starting with one of these is read as a formula by Excel, LibreOffice and WPS; a
# leading apostrophe makes it plain text (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: Any) -> Any:
    """A value safe to put in a spreadsheet cell: text that would start a formula is prefixed
    with an apostrophe; naive local times replace aware ones (Excel has no time zones)."""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value
    if hasattr(value, "isoformat"):  # dates
        return value
    return neutralise(str(value))


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(
            gettext_noop("unknown export format '%(format)s'; use xlsx or csv"),
            params={"format": fmt},
            details={"field": "format"},
        )
    return fmt


def write_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> None:
    """UTF-8 CSV with a byte-order mark, so Excel opens Chinese text correctly."""
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])


Sheet = tuple[str, Sequence[str], Iterable[Sequence[Any]]]


def write_xlsx(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    out: IO[bytes],
    *,
    sheet_title: str = "data",
) -> None:
    """One sheet, bold frozen header row; streamed (write-only) so large exports stay small in
    memory."""
    write_xlsx_sheets([(sheet_title, headers, rows)], out)


def write_xlsx_sheets(sheets: Sequence[Sheet], out: IO[bytes]) -> None:
    """Several sheets (title, headers, rows) in one workbook, each like `write_xlsx`'s: a
    report of several tables in one file."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    used: set[str] = set()
    for title, headers, rows in sheets:
        sheet = workbook.create_sheet(title=_sheet_title(title, used))
        sheet.freeze_panes = "A2"
        header_cells = []
        for header in headers:
            cell = WriteOnlyCell(sheet, value=neutralise(header))
            cell.font = bold
            header_cells.append(cell)
        sheet.append(header_cells)
        for row in rows:
            sheet.append([neutralise(v) for v in row])
    workbook.save(out)


def _sheet_title(title: str, used: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    clean = "".join("_" if c in "[]:*?/\\" else c for c in title)[:31] or "data"
    candidate, n = clean, 2
    while candidate.lower() in used:
        suffix = f" ({n})"
        candidate, n = clean[: 31 - len(suffix)] + suffix, n + 1
    used.add(candidate.lower())
    return candidate


def _csv_chunks(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([neutralise(h) for h in headers])
    for i, row in enumerate(rows):
        writer.writerow([neutralise(v) for v in row])
        if i % 1000 == 999:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_response(
    fmt: str,
    *,
    filename: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    sheet_title: str = "data",
) -> HttpResponseBase:
    """A download of the table as `filename`.xlsx or `filename`.csv (CSV is streamed)."""
    check_format(fmt)
    if fmt == "csv":
        response = StreamingHttpResponse(
            _csv_chunks(headers, rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
    return file_download(
        lambda out: write_xlsx(headers, rows, out, sheet_title=sheet_title),
        filename=f"{filename}.xlsx",
        content_type=XLSX_CONTENT_TYPE,
    )


def export_workbook_response(*, filename: str, sheets: Sequence[Sheet]) -> HttpResponseBase:
    """A download of several tables as one .xlsx, one sheet each."""
    return file_download(
        lambda out: write_xlsx_sheets(sheets, out),
        filename=f"{filename}.xlsx",
        content_type=XLSX_CONTENT_TYPE,
    )


def file_download(
    write: Callable[[IO[bytes]], object], *, filename: str, content_type: str
) -> HttpResponseBase:
    """A download of what `write` writes, spooled to disk beyond 16 MB. When `write` raises,
    the spool is closed and the error goes to the caller."""
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - FileResponse closes it
    try:
        write(spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type=content_type)


__all__ = [
    "FORMATS",
    "FORMULA_PREFIXES",
    "check_format",
    "export_response",
    "export_workbook_response",
    "file_download",
    "neutralise",
    "write_csv",
    "write_xlsx",
    "write_xlsx_sheets",
]
