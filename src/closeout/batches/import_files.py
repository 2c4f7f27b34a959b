"""Reading an uploaded file of close instructions (.xlsx or .csv) without trusting it: every
refusal says in plain words what is wrong and where, and nothing is read into memory before
the checks that can refuse it cheaply (size, container, declared sizes, row count) have passed.
"""

import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import IO, Any
from xml.etree import ElementTree

from django.conf import settings

from closeout.core.errors import DomainError

MAX_ROWS = 50_000
MAX_BYTES = 100 * 1024 * 1024
# Declared uncompressed sizes of an .xlsx: its sheets of 50,000 rows take ~15 MB.
MAX_MEMBER_BYTES = 300 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_RATIO = 200  # sheet XML compresses ~10-30×; a bomb, thousands
RATIO_FLOOR = 20 * 1024 * 1024  # members smaller than this may compress as well as they like
CHUNK = 1024 * 1024

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
KNOWN_MAGICS = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"\x1f\x8b": "a gzip archive",
    b"{\\rtf": "an RTF document",
}
MACRO_EXTENSIONS = ("xlsm", "xltm", "xlam", "xlsb")


class ImportFileRefused(DomainError):
    """The file as a whole cannot be read as close instructions; nothing was changed."""

    code = "import_file_refused"
    http_status = 422


def refuse(message: str, **details: Any) -> ImportFileRefused:
    return ImportFileRefused(message, details={"field": "file", **details})


@dataclass
class Table:
    """The first sheet of the file: its header row and the data rows that are not blank."""

    headers: list[str]
    rows: list[tuple[int, list[Any]]]  # (row number in the file, 1-based; cells)
    file_format: str
    encoding: str = ""
    # Where the reader found formulas or merged cells (checked once the headers are known).
    formula_cell: str = ""
    merged: list[str] = field(default_factory=list)
    header_row: int = 1


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def split_ref(ref: str) -> tuple[int, int]:
    """'B7' -> (row 7, column index 1)."""
    match = re.fullmatch(r"\$?([A-Z]{1,3})\$?(\d+)", ref.upper())
    if not match:
        return 0, 0
    index = 0
    for ch in match.group(1):
        index = index * 26 + ord(ch) - 64
    return int(match.group(2)), index - 1


def _limit(setting: str, default: int) -> int:
    return int(getattr(settings, setting, default))


def read_table(upload: IO[bytes], file_name: str, *, max_rows: int | None = None) -> Table:
    """Read the first sheet of an .xlsx, or a .csv in UTF-8 (with or without BOM), GBK or
    GB18030. Raises ImportFileRefused for anything that is not a plain sheet of values."""
    max_rows = max_rows or _limit("CLOSEOUT_IMPORT_MAX_ROWS", MAX_ROWS)
    name = file_name.strip() or "upload"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    upload.seek(0, io.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    if size == 0:
        raise refuse(f"'{name}' is empty: there is nothing to import")
    max_bytes = _limit("CLOSEOUT_IMPORT_MAX_BYTES", MAX_BYTES)
    if size > max_bytes:
        raise refuse(
            f"'{name}' is {size:,} bytes; files up to {max_bytes:,} bytes are accepted "
            f"(at most {max_rows:,} rows)"
        )
    head = upload.read(4096)
    upload.seek(0)
    if extension in MACRO_EXTENSIONS:
        raise refuse(
            f"'{name}' is a macro-enabled or binary workbook (.{extension}); macros are never "
            "run here: save it as a plain .xlsx workbook (Excel Workbook) and upload that"
        )
    if head.startswith(CFB_MAGIC):
        raise _refuse_cfb(upload, name)
    if head.startswith(ZIP_MAGICS):
        return _read_xlsx(upload, name, max_rows)
    if extension in ("xlsx", "xls"):
        what = next((w for magic, w in KNOWN_MAGICS.items() if head.startswith(magic)), "")
        raise refuse(
            f"'{name}' is not an Excel workbook"
            + (f": it is {what} renamed .{extension}" if what else ": its content is not .xlsx")
            + "; download the template and save your data as .xlsx or .csv"
        )
    if extension in ("csv", "txt"):
        return _read_csv(upload, name, max_rows)
    raise refuse(
        f"'{name}': only .xlsx (Excel workbook) and .csv files are accepted"
        + (f", not .{extension}" if extension else "")
    )


def _refuse_cfb(upload: IO[bytes], name: str) -> ImportFileRefused:
    """An OLE compound file is either an encrypted (password-protected) .xlsx or a legacy .xls;
    the stream names in its directory tell which."""
    sample = upload.read(4 * 1024 * 1024)
    if (
        "EncryptionInfo".encode("utf-16-le") in sample
        or "EncryptedPackage".encode("utf-16-le") in sample
    ):
        return refuse(
            f"'{name}' is password-protected (encrypted): remove the password in Excel "
            "(File › Info › Protect Workbook › Encrypt with Password, clear it), save, and "
            "upload again"
        )
    return refuse(
        f"'{name}' is a legacy Excel 97-2003 workbook (.xls) or another OLE file, which is not "
        "read here: open it in Excel or WPS and save it as .xlsx, or use the template"
    )


# --- xlsx ------------------------------------------------------------------------------------

_P = rb"<(?:[A-Za-z_][\w.-]*:)?"  # an optional namespace prefix
ROW_TAG = re.compile(_P + rb"row\b[^>]*?(/?)>")
FORMULA_TAG = re.compile(_P + rb"f(?:\s[^>]*)?/?>")
CELL_REF = re.compile(_P + rb"c\s[^>]*?\br=\"([A-Z]{1,3}\d+)\"")
MERGE_TAG = re.compile(_P + rb"mergeCell\s[^>]*?ref=\"([A-Z]{1,3}\d+(?::[A-Z]{1,3}\d+)?)\"")
OVERLAP = 4096


# What a damaged zip raises while it is opened or inflated.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    NotImplementedError,  # an unknown compression method
    RuntimeError,  # an encrypted member
)


def _read_xlsx(upload: IO[bytes], name: str, max_rows: int) -> Table:
    try:
        scan = _check_archive(upload, name, max_rows)
    except ZIP_ERRORS as exc:
        raise refuse(f"'{name}' is damaged or is not an .xlsx workbook ({exc})") from exc
    upload.seek(0)
    return _read_cells(upload, name, max_rows, scan)


def _check_archive(upload: IO[bytes], name: str, max_rows: int) -> "_Scan":
    with zipfile.ZipFile(upload) as archive:
        members = archive.infolist()
        names = {m.filename for m in members}
        if any(n.lower().endswith("vbaproject.bin") for n in names):
            raise refuse(
                f"'{name}' contains macros (vbaProject.bin); macros are never run here: save it "
                "as a plain .xlsx workbook without macros and upload that"
            )
        if "xl/workbook.xml" not in names:
            raise refuse(
                f"'{name}' is a zip archive but not an Excel workbook (no xl/workbook.xml): "
                "save your data as .xlsx or .csv"
            )
        _check_sizes(name, members)
        sheet_path = _first_sheet_path(archive)
        if sheet_path not in names:
            raise refuse(f"'{name}': the workbook's first sheet ({sheet_path}) is missing")
        return _scan_sheet(archive, archive.getinfo(sheet_path), name, max_rows)


def _read_cells(upload: IO[bytes], name: str, max_rows: int, scan: "_Scan") -> Table:
    from python_calamine import CalamineError, CalamineWorkbook, PasswordError

    try:
        workbook = CalamineWorkbook.from_filelike(upload)
        sheet = workbook.get_sheet_by_index(0)
        # Rows come from row 1, columns from the first used one.
        pad = [""] * (sheet.start[1] if sheet.start else 0)
        headers: list[str] = []
        header_row = 1
        rows: list[tuple[int, list[Any]]] = []
        for index, raw in enumerate(sheet.iter_rows(), start=1):
            cells = pad + [_cell(v) for v in raw]
            if not any(c != "" for c in cells):
                continue
            if not headers:
                headers, header_row = [_text(c) for c in cells], index
                continue
            rows.append((index, cells))
            if len(rows) > max_rows:
                raise refuse(_too_many(name, max_rows), rows=len(rows))
    except PasswordError as exc:
        raise refuse(f"'{name}' is password-protected: remove the password and save") from exc
    except (CalamineError, ValueError, OSError) as exc:
        raise refuse(f"'{name}' cannot be read as an Excel workbook: {exc}") from exc
    return Table(headers, rows, "xlsx", "", scan.formula_cell, scan.merged, header_row)


def _check_sizes(name: str, members: list[zipfile.ZipInfo]) -> None:
    """A zip bomb declares far more than it holds: refuse on the declared sizes, before
    inflating anything (and `_scan_sheet` stops if a member inflates past what it declared)."""
    max_member = _limit("CLOSEOUT_IMPORT_MAX_MEMBER_BYTES", MAX_MEMBER_BYTES)
    total = sum(m.file_size for m in members)
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > max_member or (member.file_size > RATIO_FLOOR and ratio > MAX_RATIO):
            raise refuse(
                f"'{name}' looks like a zip bomb: {member.filename} declares "
                f"{member.file_size:,} bytes uncompressed from {member.compress_size:,} "
                f"(ratio {ratio:,.0f}:1); it is not opened"
            )
    if total > MAX_TOTAL_BYTES:
        raise refuse(
            f"'{name}' declares {total:,} bytes uncompressed in all; the limit is "
            f"{MAX_TOTAL_BYTES:,}: it is not opened"
        )


def _small(archive: zipfile.ZipFile, path: str) -> bytes:
    if path not in archive.namelist():
        return b""
    with archive.open(path) as handle:
        data = handle.read(4 * 1024 * 1024 + 1)
    if len(data) > 4 * 1024 * 1024:
        raise refuse(f"the workbook's {path} is too large to be real")
    return data


def _first_sheet_path(archive: zipfile.ZipFile) -> str:
    ns = {
        "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    }
    try:
        workbook = ElementTree.fromstring(_small(archive, "xl/workbook.xml"))  # noqa: S314 (size-capped; expat limits entity expansion)
        first = workbook.find("m:sheets/m:sheet", ns)
        rel_id = first.get(f"{{{ns['r']}}}id") if first is not None else None
        rels = ElementTree.fromstring(_small(archive, "xl/_rels/workbook.xml.rels"))  # noqa: S314
    except ElementTree.ParseError as exc:
        raise refuse(f"the workbook's structure is damaged ({exc})") from exc
    for rel in rels:
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return "xl/worksheets/sheet1.xml"


@dataclass
class _Scan:
    rows: int = 0
    formula_cell: str = ""
    merged: list[str] = field(default_factory=list)
    header_row: int = 1


def _scan_sheet(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str, max_rows: int
) -> _Scan:
    """One streaming pass over the sheet's XML: count rows (refusing as soon as there are too
    many), find the first formula and the merged ranges, and never inflate more bytes than the
    member declared."""
    scan = _Scan()
    read = 0
    tail = b""
    with archive.open(member) as handle:
        while True:
            chunk = handle.read(CHUNK)
            read += len(chunk)
            if read > member.file_size + CHUNK:
                raise refuse(f"'{name}' inflates beyond its declared size: it is not opened")
            eof = not chunk
            buffer = tail + chunk
            stop = len(buffer) if eof else max(len(buffer) - OVERLAP, 0)
            start = len(tail) - OVERLAP if len(tail) >= OVERLAP else 0
            _scan_part(buffer, max(start, 0), stop, scan)
            if scan.rows > max_rows + 1:
                raise refuse(_too_many(name, max_rows), rows=scan.rows)
            if eof:
                return scan
            tail = buffer[stop:]
            # Matches before `stop` were counted; keep a little before it for cell context.
            context = buffer[max(stop - OVERLAP, 0) : stop]
            tail = context + tail


def _scan_part(buffer: bytes, start: int, stop: int, scan: _Scan) -> None:
    for match in ROW_TAG.finditer(buffer, start):
        if match.start() >= stop:
            break
        if not match.group(1):  # <row .../> holds no cell
            scan.rows += 1
    if not scan.formula_cell and (b"<f" in buffer or b":f" in buffer):
        for match in FORMULA_TAG.finditer(buffer, start):
            if match.start() >= stop:
                break
            cells = list(CELL_REF.finditer(buffer, max(match.start() - OVERLAP, 0), match.start()))
            scan.formula_cell = cells[-1].group(1).decode() if cells else "?"
            break
    if b"mergeCell" not in buffer:
        return
    for match in MERGE_TAG.finditer(buffer, start):
        if match.start() >= stop:
            break
        scan.merged.append(match.group(1).decode())


def _too_many(name: str, max_rows: int) -> str:
    return (
        f"'{name}' has more than {max_rows:,} data rows; split it into files of at most "
        f"{max_rows:,} rows"
    )


def _cell(value: Any) -> Any:
    """Cell values as the checks expect them: whole numbers as int, blanks as ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, time | timedelta):
        return str(value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip() if value is not None else ""


# --- csv -------------------------------------------------------------------------------------


def _read_csv(upload: IO[bytes], name: str, max_rows: int) -> Table:
    _count_csv_rows(upload, name, max_rows)
    upload.seek(0)
    data = upload.read()
    text, encoding = _decode(data, name)
    if "\x00" in text:
        raise refuse(f"'{name}' is not a text file (it holds binary data); upload .xlsx or .csv")
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] = []
    header_row = 1
    rows: list[tuple[int, list[Any]]] = []
    try:
        for record in reader:
            cells = [c.strip() for c in record]
            if not any(cells):
                continue
            if not headers:
                headers, header_row = cells, reader.line_num
                continue
            # The line the record started on (a quoted field may span lines).
            rows.append((reader.line_num - sum(c.count("\n") for c in record), cells))
            if len(rows) > max_rows:
                raise refuse(_too_many(name, max_rows), rows=len(rows))
    except csv.Error as exc:
        raise refuse(f"'{name}' line {reader.line_num}: not valid CSV ({exc})") from exc
    return Table(headers, rows, "csv", encoding, header_row=header_row)


def _count_csv_rows(upload: IO[bytes], name: str, max_rows: int) -> None:
    """Refuse a file with too many rows after reading only as much of it as it takes: line ends
    first (cheap), then, only if those are too many, records (quoted fields may hold line
    ends)."""
    newlines = 0
    while chunk := upload.read(CHUNK):
        newlines += chunk.count(b"\n")
    if newlines <= max_rows + 1:
        return
    upload.seek(0)
    # latin-1 maps every byte to one character: quotes and line ends stay where they are.
    lines = (line.decode("latin-1") for line in upload)
    try:
        records = 0
        for record in csv.reader(lines):
            records += any(field.strip() for field in record)  # blank lines do not count
            if records > max_rows + 1:
                raise refuse(_too_many(name, max_rows), rows=records - 1)
    except csv.Error:
        pass  # bad CSV is reported with its line by the real read


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """UTF-8 (with or without BOM) strictly first, then GB18030 (which reads GBK and GB2312),
    then whatever charset-normalizer finds, if the result is real text."""
    try:
        text = data.decode("utf-8-sig")
        return text, "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError:
        pass
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        text = str(best)
        controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n")
        if not controls:
            return text, str(best.encoding)
    raise refuse(
        f"'{name}' cannot be read as text: it is neither UTF-8 nor GBK/GB18030 (save it from "
        "Excel as 'CSV UTF-8', or upload the .xlsx)"
    )


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
