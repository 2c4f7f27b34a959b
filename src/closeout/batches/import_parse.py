"""Reading an import file's rows (导入结案指令, parse): each cell's meaning (document type,
action, line numbers, reason, remark, close date, dimension). Reads no document: the columns
are in `import_columns`, the checks against the database in `import_checks`, the execution in
`imports`."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.utils import translation

from closeout.batches.import_columns import (
    ACTION_ALIASES,
    COLUMNS,
    MAX_NUMBER,
    MAX_REMARK,
    alias_map,
    doc_type_aliases,
    norm,
)
from closeout.closing.dimensions import dimensions_of
from closeout.closing.models import ReasonAction, ReasonCode
from closeout.closing.reasons import ReasonTable
from closeout.core.inputs import date_problem, is_digits, non_ascii_digit
from closeout.documents.models import DocType

if TYPE_CHECKING:
    from closeout.batches.import_facts import DocRow


# --- one row -------------------------------------------------------------------------------


@dataclass
class RowCheck:
    """One data row: its values as read, what they mean, and its verdict."""

    row: int
    cells: list[Any]
    errors: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""
    outcome: str = ""
    doc_type: str = ""
    number: str = ""
    action: str = ""
    line_nos: list[int] | None = None
    reason: str = ""
    remark: str = ""
    close_date: date | None = None
    company: str = ""
    dimension: str = ""
    document: "DocRow | None" = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, column: str, message: str) -> None:
        self.errors.append((column, message))

    @property
    def label(self) -> str:
        return f"row {self.row}: {self.doc_type or '?'} {self.number or '?'}"[:100]

    def params(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "action": self.action,
            "line_nos": self.line_nos,
            "reason_code": self.reason,
            "remark": self.remark,
            "close_date": self.close_date.isoformat() if self.close_date else None,
            **({"dimension": self.dimension} if self.dimension else {}),
        }


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _bad_text(text: str) -> str:
    """Why a text cannot be taken as it is ('' when it can)."""
    if text.isprintable():
        return ""
    if CONTROL.search(text):
        return "holds control characters (invisible bytes); retype the value"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds characters that are not valid text; retype the value"
    return ""


LINE_SEPARATORS = re.compile(r"[,，;；、/\s]+")
RANGE = re.compile(r"([0-9]+)\s*[-~–—～]\s*([0-9]+)")


def parse_line_nos(value: Any) -> list[int] | None:
    """'1,3', '1，3', '1-3', 2 -> line numbers; '' -> None (the whole document). ValueError
    when the text is not such a list."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError
        return [value]
    text = _as_text(value)
    if not text:
        return None
    numbers: list[int] = []
    for part in LINE_SEPARATORS.split(text.replace(" - ", "-")):
        if not part:
            continue
        ranged = RANGE.fullmatch(part)
        if ranged:
            low, high = int(ranged.group(1)), int(ranged.group(2))
            if low <= 0 or high < low or high - low > 10_000:
                raise ValueError
            numbers.extend(range(low, high + 1))
        elif is_digits(part) and len(part) <= 9 and int(part) > 0:
            numbers.append(int(part))
        else:
            raise ValueError
    if not numbers:
        raise ValueError
    return list(dict.fromkeys(numbers))


# Numbers in full-width or Arabic-Indic digits read as numbers in Python; here they are refused.
_DIGITS_HINT = " with the digits 0-9"

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")


def parse_date(value: Any) -> date | None:
    """A date cell, or text as YYYY-MM-DD (also / . and 年月日); '' -> None. ValueError."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 8:
        value = str(value)
    elif not isinstance(value, str):
        raise ValueError
    return _date_of(value.strip())


@lru_cache(maxsize=4096)
def _date_of(text: str) -> date | None:
    """Dates repeat down a column: each distinct text is parsed once."""
    if not text:
        return None
    if non_ascii_digit(text):  # strptime reads "２０２６年3月1日" too
        raise ValueError(text)
    text = re.sub(r"[T ]00:00(:00(\.0+)?)?$", "", text)
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a calendar date)
        except ValueError:
            continue
    raise ValueError


@dataclass
class Reasons:
    by_code: dict[str, ReasonCode]
    aliases: dict[str, str]

    table: ReasonTable | None = None

    @classmethod
    def load(cls) -> "Reasons":
        """Every code once: the group's row, else a company's (each row's document then
        checks the code against its own company, `company_check`)."""
        table = ReasonTable.load()
        aliases: dict[str, str] = {}
        by_code: dict[str, ReasonCode] = {}
        for r in table.rows:
            aliases |= alias_map(r.code, r.label_zh, r.label_en)
            if r.code not in by_code or r.company_id is None:
                by_code[r.code] = r
        return cls(by_code, aliases, table)

    def company_check(self, row: "RowCheck", company: str, label: str) -> None:
        """The row's reason must be in force in its document's company (`company`, a code)."""
        if not row.reason or self.table is None or any(c == "reason" for c, _ in row.errors):
            return
        action = ReasonAction.REOPEN if row.action == "reopen" else ReasonAction.CLOSE
        company_id = self.table.company_id_of(company)
        if self.table.valid(row.reason, action, company_id) is not None:
            return
        owners = self.table.owners(row.reason, action)
        row.error(
            "reason",
            f"{label}: reason '{row.reason}' "
            + (f"is a reason of company {', '.join(owners)}, not" if owners else "is not in use")
            + f" of company {company}; a {action} there needs one of: "
            + ", ".join(self.table.allowed(action, company_id)),
        )

    def allowed(self, action: str) -> list[str]:
        return [
            r.code
            for r in self.by_code.values()
            if r.action == action and r.active and not r.system
        ]


def parse_row(row: RowCheck, keys: list[str], reasons: Reasons, today: date) -> None:
    """Read one row's cells into its fields; every problem becomes an error on its column."""
    values: dict[str, Any] = {}
    for index, key in enumerate(keys):
        if key:
            values[key] = row.cells[index] if index < len(row.cells) else ""
    texts = {key: _as_text(v) for key, v in values.items()}
    for key, text in texts.items():
        problem = _bad_text(text)
        if problem:
            row.error(key, problem)
            texts[key] = ""
            values[key] = ""
    for column in COLUMNS:
        if column.required and not texts.get(column.key):
            row.error(column.key, f"{column.header} is missing: it is required")
    _parse_names(row, texts)
    if texts.get("lines"):
        _parse_lines(row, values["lines"], texts["lines"])
    if texts.get("reason"):
        _parse_reason(row, texts["reason"], reasons)
    remark = texts.get("remark", "")
    if len(remark) > MAX_REMARK:
        row.error("remark", f"the remark is longer than {MAX_REMARK:,} characters")
    row.remark = remark[:MAX_REMARK]
    if texts.get("close_date"):
        _parse_close_date(row, values["close_date"], texts["close_date"], today)
    if texts.get("dimension"):
        _parse_dimension(row, texts["dimension"])
    if row.action == "reopen":
        if row.line_nos is not None:
            row.error(
                "lines",
                "a reopen restores the whole last close: leave the line numbers empty",
            )
        if texts.get("close_date"):
            row.error("close_date", "a reopen takes no close date: leave it empty")


def _parse_names(row: RowCheck, texts: dict[str, str]) -> None:
    """Document type, number, company and action."""
    if texts.get("doc_type"):
        row.doc_type = doc_type_aliases().get(norm(texts["doc_type"]), "")
        if not row.doc_type:
            row.error(
                "doc_type",
                f"unknown document type '{texts['doc_type'][:60]}'; use one of: "
                + ", ".join(DocType.values),
            )
    if texts.get("number"):
        row.number = texts["number"]
        if len(row.number) > MAX_NUMBER:
            row.error("number", f"a document number has at most {MAX_NUMBER} characters")
            row.number = row.number[:MAX_NUMBER]
    row.company = texts.get("company", "")
    if texts.get("action"):
        row.action = ACTION_ALIASES.get(norm(texts["action"]), "")
        if not row.action:
            row.error(
                "action",
                f"unknown action '{texts['action'][:60]}'; use close (结案), reopen (反结案) "
                "or request (申请结案)",
            )


def _parse_lines(row: RowCheck, value: Any, text: str) -> None:
    try:
        row.line_nos = parse_line_nos(value)
    except ValueError:
        row.error(
            "lines",
            f"'{text[:60]}' is not a list of line numbers such as 1,3 (or 1-3)"
            + _DIGITS_HINT * bool(non_ascii_digit(text)),
        )


def _parse_reason(row: RowCheck, text: str, reasons: Reasons) -> None:
    code = reasons.aliases.get(norm(text), "")
    reason = reasons.by_code.get(code)
    if reason is None:
        row.error("reason", f"unknown reason code '{text[:60]}'" + _reason_hint(row, reasons))
    elif reason.system or not reason.active:
        row.error(
            "reason",
            f"reason '{reason.code}' is "
            + ("used by the system only" if reason.system else "no longer in use")
            + _reason_hint(row, reasons),
        )
    elif row.action:
        wanted = ReasonAction.REOPEN if row.action == "reopen" else ReasonAction.CLOSE
        if reason.action != wanted:
            row.error(
                "reason",
                f"reason '{reason.code}' is a {reason.action} reason, not valid for "
                f"{row.action}" + _reason_hint(row, reasons),
            )
    row.reason = reason.code if reason is not None else ""


def _parse_close_date(row: RowCheck, value: Any, text: str, today: date) -> None:
    try:
        row.close_date = parse_date(value)
    except ValueError:
        row.error(
            "close_date",
            f"'{text[:40]}' is not a date; write it as YYYY-MM-DD"
            + _DIGITS_HINT * bool(non_ascii_digit(text)),
        )
    if row.close_date is not None and date_problem(row.close_date):
        row.error("close_date", f"close date {date_problem(row.close_date)}")
    if row.close_date is not None and row.close_date > today:
        row.error("close_date", f"close date {row.close_date} is in the future")


@lru_cache(maxsize=16)
def dimension_aliases(doc_type: str) -> dict[str, str]:
    """The close dimensions of a type by code and by their names in English and Chinese
    (收货, 收货关闭, receiving, closed for receiving, …)."""
    aliases: dict[str, str] = {}
    for dimension in dimensions_of(doc_type):
        names = []
        for language in ("en", "zh-hans"):
            with translation.override(language):
                names += [str(dimension.label), str(dimension.closed_label)]
        aliases |= alias_map(dimension.code, *names)
    return aliases


def _parse_dimension(row: RowCheck, text: str) -> None:
    """The close dimension of a close row, among its document type's."""
    if row.action and row.action != "close":
        row.error(
            "dimension",
            "a close dimension is closed directly: use the action close (结案), or leave the "
            "dimension empty",
        )
        return
    if row.close_date is not None:
        row.error("close_date", "a dimension close takes no close date: leave it empty")
    if not row.doc_type:
        return
    allowed = [d.code for d in dimensions_of(row.doc_type)]
    if not allowed:
        row.error(
            "dimension",
            f"a {row.doc_type} line has no close dimensions of its own: leave the dimension "
            "empty to close the line",
        )
        return
    row.dimension = dimension_aliases(row.doc_type).get(norm(text), "")
    if not row.dimension:
        row.error(
            "dimension",
            f"unknown close dimension '{text[:60]}' for a {row.doc_type}; use one of: "
            + ", ".join(allowed),
        )


def _reason_hint(row: RowCheck, reasons: Reasons) -> str:
    action = ReasonAction.REOPEN if row.action == "reopen" else ReasonAction.CLOSE
    return f"; a {action} needs one of: " + ", ".join(reasons.allowed(action))
