"""Import of close instructions from Excel or CSV (导入结案指令, S18): the template, the
validation of every row (set-based: a few queries for any number of rows, nothing changed),
the stored report, and the execution of the valid rows as one batch job whose items carry
their own parameters."""

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F
from django.db.models.expressions import RawSQL
from django.utils import timezone

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.approvals.models import AccountingPeriod, ApprovalRoute, RequestAction
from closeout.approvals.selectors import active_routes, route_choose
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.batches.import_files import (
    ImportFileRefused,
    Table,
    column_letter,
    read_table,
    refuse,
    split_ref,
)
from closeout.batches.models import BatchAction, BatchItem, BatchJob, BatchState, ImportFile
from closeout.closing.models import ClosePolicy, ReasonAction, ReasonCode, Severity
from closeout.closing.policies import policy_partitions
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, effective_rules, num
from closeout.closing.services import close_guard
from closeout.closing.transitions import ids_param
from closeout.closing.types import close_spec_for
from closeout.core.errors import InvalidInput, NotFound, PermissionDenied, RuleFailed
from closeout.core.inputs import check_no_nul, date_problem, is_digits, non_ascii_digit
from closeout.core.models import OrgUnit
from closeout.documents.models import CloseState, DocType, Document, Line

MAX_REMARK = 2000
MAX_NUMBER = 60
CHUNK = 2000


# --- the columns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    required: bool
    width: int
    help_zh: str
    help_en: str

    @property
    def header(self) -> str:
        return f"{self.zh} {self.en}"


COLUMNS = (
    Column(
        "doc_type",
        "单据类型",
        "document type",
        True,
        24,
        "从下拉列表选择，例如 采购订单 purchase_order",
        "choose from the list, e.g. 采购订单 purchase_order",
    ),
    Column("number", "单号", "number", True, 18, "单据编号", "the document number"),
    Column(
        "lines",
        "行号",
        "line numbers",
        False,
        14,
        "只结案这些行，例如 1,3；留空 = 整单",
        "close only these lines, e.g. 1,3; empty = the whole document",
    ),
    Column(
        "action",
        "动作",
        "action",
        True,
        16,
        "结案 close、反结案 reopen 或 申请结案 request",
        "close, reopen or request (a close request for approval)",
    ),
    Column(
        "reason",
        "原因代码",
        "reason code",
        True,
        30,
        "从下拉列表选择；结案与反结案的原因不同",
        "choose from the list; close and reopen have their own reasons",
    ),
    Column(
        "remark",
        "备注",
        "remark",
        False,
        40,
        "例外条件不满足时必填；反结案申请必填",
        "required when an exception rule fails, and for a reopen request",
    ),
    Column(
        "close_date",
        "结案日期",
        "close date",
        False,
        14,
        "YYYY-MM-DD，不能晚于今天；留空 = 今天",
        "YYYY-MM-DD, not after today; empty = today",
    ),
    Column(
        "company",
        "公司",
        "company",
        False,
        12,
        "公司编码；单号只属于一个公司时可留空",
        "company code; may be empty when the number is in one company",
    ),
)
COLUMN = {c.key: c for c in COLUMNS}
RESULT_HEADERS = ("行 row", "结果 result", "出错列 column", "说明 message")

ACTIONS: dict[str, tuple[str, str]] = {
    # code: (Chinese, what the action does)
    "close": ("结案", "close now (a close request where an approval route applies)"),
    "reopen": ("反结案", "reopen a closed document (a reopen request where required)"),
    "request": ("申请结案", "submit a close request for approval"),
}


@lru_cache(maxsize=8192)
def _norm(text: str) -> str:
    """Header and value text compared loosely: case, underscores, spacing and brackets."""
    text = re.sub(r"[()（）\[\]【】*:：]", " ", text.replace("_", " "))
    return " ".join(text.casefold().split())


def _aliases(code: str, *names: str) -> dict[str, str]:
    result = {_norm(code): code}
    for name in names:
        result[_norm(name)] = code
        result[_norm(f"{name} {code}")] = code
        result[_norm(f"{code} {name}")] = code
    if len(names) == 2:
        result[_norm(f"{names[0]} {names[1]}")] = code
    return result


HEADER_ALIASES: dict[str, str] = {}
for _c in COLUMNS:
    HEADER_ALIASES |= _aliases(_c.key, _c.zh, _c.en)
HEADER_ALIASES |= {_norm("type"): "doc_type", _norm("单号 document number"): "number"}
HEADER_ALIASES |= {_norm("reason"): "reason", _norm("原因"): "reason", _norm("lines"): "lines"}

DOC_TYPE_ALIASES: dict[str, str] = {}
for _code, _label in DocType.choices:
    _zh, _, _en = str(_label).partition(" ")
    DOC_TYPE_ALIASES |= _aliases(_code, _zh, _en)

ACTION_ALIASES: dict[str, str] = {}
for _code, (_zh, _what) in ACTIONS.items():
    ACTION_ALIASES |= _aliases(_code, _zh)
ACTION_ALIASES |= {_norm("手工结案"): "close", _norm("结案申请"): "request"}
ACTION_ALIASES |= {_norm("request close"): "request", _norm("close request"): "request"}


def doc_type_choice(code: str, label: str) -> str:
    return f"{label.partition(' ')[0]} {code}"


def reason_choice(reason: ReasonCode) -> str:
    return f"{reason.label_zh} {reason.code}"


# --- headers and file-level checks ---------------------------------------------------------


def map_columns(table: Table) -> list[str]:
    """The column key of each header position ('' for an unused empty column)."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    width = max([len(table.headers)] + [len(cells) for _row, cells in table.rows[:1000]])
    headers = table.headers + [""] * (width - len(table.headers))
    for index, header in enumerate(headers):
        letter = column_letter(index)
        if not header.strip():
            filled = next((row for row, cells in table.rows if _filled(cells, index)), None)
            if filled is not None:
                raise refuse(
                    f"column {letter} holds values (row {filled}) but has no header; give it "
                    "one of the template's headers or delete it",
                    column=letter,
                    row=filled,
                )
            keys.append("")
            continue
        key = HEADER_ALIASES.get(_norm(header))
        if key is None:
            raise refuse(
                f"unknown column '{header}' (column {letter} of the header row); the columns "
                "are: " + ", ".join(c.header for c in COLUMNS),
                column=letter,
            )
        if key in seen:
            raise refuse(
                f"the column '{COLUMN[key].header}' appears twice (columns "
                f"{column_letter(seen[key])} and {letter})",
                column=letter,
            )
        seen[key] = index
        keys.append(key)
    missing = [c.header for c in COLUMNS if c.required and c.key not in seen]
    if missing:
        raise refuse(
            "missing column(s): "
            + ", ".join(f"'{m}'" for m in missing)
            + "; the header row needs them (download the template)",
            missing=missing,
        )
    table.headers = headers
    return keys


def _filled(cells: list[Any], index: int) -> bool:
    return index < len(cells) and cells[index] not in ("", None)


def check_table(table: Table) -> list[str]:
    """Everything about the file as a whole; returns the column keys."""
    if not table.headers:
        raise refuse("the file has no content: no header row and no data rows")
    keys = map_columns(table)
    if table.formula_cell:
        row, index = split_ref(table.formula_cell)
        name = table.headers[index] if index < len(table.headers) else column_letter(index)
        raise refuse(
            f"row {row}, column {name} ({table.formula_cell}) holds a formula; formulas are not "
            "imported: copy the sheet and paste it as values (Paste Special › Values)",
            row=row,
            column=name,
        )
    for merged in table.merged:
        first = merged.partition(":")[0]
        row, index = split_ref(first)
        name = table.headers[index] if index < len(table.headers) else column_letter(index)
        if row <= table.header_row:
            raise refuse(
                f"the header cells {merged} are merged; unmerge them so that each column has "
                "its own header",
                row=row,
            )
        raise refuse(
            f"row {row}, column {name}: cells {merged} are merged; unmerge them and fill each cell",
            row=row,
            column=name,
        )
    if not table.rows:
        raise refuse("the file has a header row but no data rows below it")
    return keys


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
class _Reasons:
    by_code: dict[str, ReasonCode]
    aliases: dict[str, str]

    @classmethod
    def load(cls) -> "_Reasons":
        reasons = list(ReasonCode.objects.all())
        aliases: dict[str, str] = {}
        for r in reasons:
            aliases |= _aliases(r.code, r.label_zh, r.label_en)
        return cls({r.code: r for r in reasons}, aliases)

    def allowed(self, action: str) -> list[str]:
        return [
            r.code
            for r in self.by_code.values()
            if r.action == action and r.active and not r.system
        ]


def _parse_row(row: RowCheck, keys: list[str], reasons: _Reasons, today: date) -> None:
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

    if texts.get("doc_type"):
        row.doc_type = DOC_TYPE_ALIASES.get(_norm(texts["doc_type"]), "")
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
        row.action = ACTION_ALIASES.get(_norm(texts["action"]), "")
        if not row.action:
            row.error(
                "action",
                f"unknown action '{texts['action'][:60]}'; use close (结案), reopen (反结案) "
                "or request (申请结案)",
            )
    if texts.get("lines"):
        try:
            row.line_nos = parse_line_nos(values["lines"])
        except ValueError:
            row.error(
                "lines",
                f"'{texts['lines'][:60]}' is not a list of line numbers such as 1,3 (or 1-3)"
                + _DIGITS_HINT * bool(non_ascii_digit(texts["lines"])),
            )
    if texts.get("reason"):
        text = texts["reason"]
        code = reasons.aliases.get(_norm(text), "")
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
    remark = texts.get("remark", "")
    if len(remark) > MAX_REMARK:
        row.error("remark", f"the remark is longer than {MAX_REMARK:,} characters")
    row.remark = remark[:MAX_REMARK]
    if texts.get("close_date"):
        try:
            row.close_date = parse_date(values["close_date"])
        except ValueError:
            row.error(
                "close_date",
                f"'{texts['close_date'][:40]}' is not a date; write it as YYYY-MM-DD"
                + _DIGITS_HINT * bool(non_ascii_digit(texts["close_date"])),
            )
        if row.close_date is not None and date_problem(row.close_date):
            row.error("close_date", f"close date {date_problem(row.close_date)}")
        if row.close_date is not None and row.close_date > today:
            row.error("close_date", f"close date {row.close_date} is in the future")
    if row.action == "reopen":
        if row.line_nos is not None:
            row.error(
                "lines",
                "a reopen restores the whole last close: leave the line numbers empty",
            )
        if texts.get("close_date"):
            row.error("close_date", "a reopen takes no close date: leave it empty")


def _reason_hint(row: RowCheck, reasons: _Reasons) -> str:
    action = ReasonAction.REOPEN if row.action == "reopen" else ReasonAction.CLOSE
    return f"; a {action} needs one of: " + ", ".join(reasons.allowed(action))


# --- duplicates ----------------------------------------------------------------------------


def _check_duplicates(rows: list[RowCheck]) -> None:
    """A document may appear in several rows only to close different lines; a later row that
    repeats or overlaps an earlier one is refused, naming the earlier row."""
    earlier: dict[tuple[str, str, str], list[RowCheck]] = defaultdict(list)
    for row in rows:
        if not (row.doc_type and row.number):
            continue
        key = (row.doc_type, row.number, row.company)
        mine = set(row.line_nos) if row.line_nos else None
        for other in earlier[key]:
            theirs = set(other.line_nos) if other.line_nos else None
            if mine == theirs:
                row.error(
                    "number",
                    f"duplicate row: the same document and lines as row {other.row}",
                )
                break
            if mine is None or theirs is None or mine & theirs:
                shared = (
                    "the whole document"
                    if mine is None or theirs is None
                    else "line " + ", ".join(map(str, sorted(mine & theirs)))
                )
                row.error("lines", f"row {other.row} already takes {shared} of this document")
                break
        else:
            earlier[key].append(row)


# --- the documents, their lines and rules, set-based ---------------------------------------


@dataclass(frozen=True)
class DocRow:
    """What the checks read of a document: a plain row (tens of thousands of model instances
    cost more than the whole query)."""

    pk: int
    doc_type: str
    number: str
    org_unit: OrgUnit
    close_state: str
    document_date: date
    close_date: date | None
    total_amount_company: Decimal
    released_value_company: Decimal
    company: str = ""

    @property
    def org_unit_id(self) -> int:
        return self.org_unit.pk

    @property
    def label(self) -> str:
        return f"{self.doc_type} {self.number}"

    def model(self) -> Document:
        """An unsaved copy for the route conditions (which read these fields only)."""
        return Document(
            pk=self.pk,
            doc_type=self.doc_type,
            number=self.number,
            org_unit=self.org_unit,
            close_state=self.close_state,
            document_date=self.document_date,
            close_date=self.close_date,
            total_amount_company=self.total_amount_company,
            released_value_company=self.released_value_company,
        )


DOC_FIELDS = (
    "pk",
    "doc_type",
    "number",
    "org_unit_id",
    "close_state",
    "document_date",
    "close_date",
    "total_amount_company",
    "released_value_company",
    "company__unit__code",
)


def _texts_param(texts: list[str]) -> RawSQL:
    """Many strings as ONE query parameter (as `ids_param` does for ids): binding thousands of
    separate parameters costs more than the lookup."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", [texts])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(texts)])


def _load_documents(rows: list[RowCheck]) -> dict[tuple[str, str], list[DocRow]]:
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.doc_type and row.number:
            wanted[row.doc_type].add(row.number)
    found: list[tuple[Any, ...]] = []
    for doc_type, numbers in wanted.items():
        listed = sorted(numbers)
        for start in range(0, len(listed), 5000):
            part = listed[start : start + 5000]
            found += Document.objects.filter(
                doc_type=doc_type, number__in=_texts_param(part)
            ).values_list(*DOC_FIELDS)
    units = OrgUnit.objects.in_bulk({values[3] for values in found})
    documents: dict[tuple[str, str], list[DocRow]] = defaultdict(list)
    for pk, doc_type, number, unit, *rest in found:
        documents[doc_type, number].append(DocRow(pk, doc_type, number, units[unit], *rest))
    return documents


def _row_document(row: RowCheck, found: list[DocRow], perms: "_Permissions") -> None:
    """The row's document among those of its number the uploader may view (a document they
    may not view is reported as unknown, word for word); a number held by several of their
    companies needs the company column."""
    found = [
        d
        for d in found
        if perms.allows(Perm.DOCUMENT_VIEW, d) and (not row.company or d.company == row.company)
    ]
    if not found:
        row.error("number", f"unknown document: no {row.doc_type} numbered {row.number}")
    elif len(found) > 1:
        codes = ", ".join(sorted(d.company for d in found))
        row.error(
            "company",
            f"{row.doc_type} {row.number} exists in several companies ({codes}): "
            "fill in the company column",
        )
    else:
        row.document = found[0]


@dataclass
class _Facts:
    """What the rules say about the documents of the close and request rows."""

    policy: dict[int, ClosePolicy] = field(default_factory=dict)
    doc_failing: dict[int, list[tuple[Rule, Severity]]] = field(default_factory=dict)
    # document -> line number -> (close state, released value in company currency)
    lines: dict[int, dict[int, tuple[str, Decimal]]] = field(default_factory=dict)
    line_failing: dict[tuple[int, int], list[tuple[Rule, Severity]]] = field(default_factory=dict)


def _flag(condition: Any) -> ExpressionWrapper[Any]:
    return ExpressionWrapper(condition, output_field=BooleanField())


def _rule_facts(doc_type: str, ids: list[int], facts: _Facts) -> None:
    """Every rule of the documents' policies, with each rule's own `failing` condition: the
    document rules on the documents, the line rules on each line (so that a row naming some
    lines is judged on those lines, as the checklist does), two queries per policy and chunk."""
    close = close_spec_for(doc_type)
    released = num(close.released_value() * F("document__exchange_rate"))
    for policy, scope in policy_partitions(doc_type):
        rules = effective_rules(close.rules, policy, for_auto=False)
        doc_rules = [(r, s) for r, s in rules if r.scope is Scope.DOCUMENT]
        line_rules = [(r, s) for r, s in rules if r.scope is Scope.LINE]
        doc_flags = {f"r{i}": _flag(r.failing(policy)) for i, (r, _s) in enumerate(doc_rules)}
        line_flags = {f"r{i}": _flag(r.failing(policy)) for i, (r, _s) in enumerate(line_rules)}
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            governed = []
            rows = (
                Document.objects.filter(pk__in=ids_param(part))
                .filter(scope)
                .annotate(**doc_flags)
                .values_list("pk", *doc_flags)
            )
            for pk, *flags in rows:
                facts.policy[pk] = policy
                facts.doc_failing[pk] = [doc_rules[i] for i, f in enumerate(flags) if f]
                facts.lines[pk] = {}
                governed.append(pk)
            if not governed:
                continue
            lines = (
                Line.objects.filter(document_id__in=ids_param(governed))
                .annotate(rv=released, **line_flags)
                .values_list("document_id", "line_no", "close_state", "rv", *line_flags)
            )
            for doc_id, line_no, state, value, *flags in lines:
                open_value = Decimal(str(value or 0)) if state == CloseState.OPEN else Decimal(0)
                facts.lines[doc_id][line_no] = (state, open_value)
                if state in LINE_SCOPE:
                    facts.line_failing[(doc_id, line_no)] = (
                        [line_rules[i] for i, f in enumerate(flags) if f] if any(flags) else []
                    )


class _Permissions:
    """The actor's permission per (permission, unit, type), asked once each."""

    def __init__(self, user: AbstractBaseUser) -> None:
        self.user = user
        self.known: dict[tuple[str, int, str], bool] = {}

    def allows(self, perm: str, document: DocRow) -> bool:
        key = (perm, document.org_unit_id, document.doc_type)
        if key not in self.known:
            self.known[key] = user_has_perm(
                self.user, perm, org_unit=document.org_unit, doc_type=document.doc_type
            )
        return self.known[key]

    def refusal(self, perm: Perm, document: DocRow) -> str:
        return (
            f"no permission: {self.user.get_username()} lacks '{perm.value}' "
            f"({perm.label}) for {document.label} in {document.org_unit.code}"
        )


STATE_WORDS: dict[str, str] = {
    CloseState.OPEN: "open",
    CloseState.CLOSED: "already closed",
    CloseState.CLOSE_PENDING: "waiting for close approval",
    CloseState.REOPEN_PENDING: "waiting for reopen approval",
    CloseState.ON_HOLD: "on hold",
    CloseState.ARCHIVED: "archived (final)",
}


def _described(failing: dict[str, tuple[Rule, set[int]]]) -> dict[str, str]:
    """Failing rules as the close guard names them: code, label and the failing lines."""
    described = {}
    for code, (rule, lines) in failing.items():
        where = f" (lines {', '.join(map(str, sorted(lines)))})" if lines else ""
        described[code] = f"{code}: {rule.label_en}{where}"
    return described


def _in_closed_period(
    day: date, document: DocRow, closed_periods: list[tuple[date, date, str | None]]
) -> bool:
    """Whether `day` lies in a closed period of the document's company (or of every one)."""
    return any(s <= day <= e and c in (None, document.company) for s, e, c in closed_periods)


def _judge_close(
    row: RowCheck,
    document: DocRow,
    facts: _Facts,
    perms: _Permissions,
    routes: list[ApprovalRoute],
    closed_periods: list[tuple[date, date, str | None]],
) -> None:
    """A close or request row on an open document: lines, date, permission, rules, route."""
    perm = Perm.CLOSE_REQUEST if row.action == "request" else Perm.CLOSE_DIRECT
    if not perms.allows(perm, document):
        row.error("action", perms.refusal(perm, document))
    lines = facts.lines.get(document.pk, {})
    if row.line_nos is not None:
        unknown = [n for n in row.line_nos if n not in lines]
        if unknown:
            row.error(
                "lines",
                f"unknown line number: {document.label} has no line "
                + ", ".join(map(str, unknown)),
            )
            return
        closed = [n for n in row.line_nos if lines[n][0] != CloseState.OPEN]
        if closed:
            states = ", ".join(
                f"line {n} is {STATE_WORDS.get(lines[n][0], lines[n][0])}" for n in closed
            )
            row.error("lines", f"{document.label}: {states}")
            return
        chosen = list(row.line_nos)
    else:
        chosen = [n for n, (state, _v) in lines.items() if state == CloseState.OPEN]
        if not chosen:
            row.error("number", f"{document.label} has no open line to close")
            return
    if row.close_date is not None and row.close_date < document.document_date:
        row.error(
            "close_date",
            f"close date {row.close_date} is before the document date {document.document_date}",
        )
    day = row.close_date or timezone.localdate()
    if _in_closed_period(day, document, closed_periods):
        row.error(
            "close_date",
            f"close date {day} lies in a closed accounting period; choose a date in an open period",
        )
    in_scope = {n for n, (state, _v) in lines.items() if state in LINE_SCOPE}
    judged = in_scope if row.line_nos is None else set(chosen)
    failing: dict[str, tuple[Rule, set[int]]] = {}
    severities: dict[str, Severity] = {}
    for line_no in sorted(judged):
        for rule, severity in facts.line_failing.get((document.pk, line_no), []):
            failing.setdefault(rule.code, (rule, set()))[1].add(line_no)
            severities[rule.code] = severity
    if row.line_nos is None or judged >= in_scope:
        for rule, severity in facts.doc_failing.get(document.pk, []):
            failing.setdefault(rule.code, (rule, set()))
            severities[rule.code] = severity
    blocking = {c: v for c, v in failing.items() if severities[c] == Severity.BLOCKING}
    exceptions = {c: v for c, v in failing.items() if severities[c] == Severity.EXCEPTION}
    try:
        # The one guard of a manual close, given the failing rules it would see.
        close_guard(
            document.label,
            blocking=_described(blocking),
            exceptions=_described(exceptions),
            remark=row.remark,
        )
    except RuleFailed as refusal:
        row.error("number", f"blocking rule failed: {refusal.message}")
    except InvalidInput as refusal:
        row.error("remark", f"exception rule failed: {refusal.message}")
    if row.errors:
        return
    open_value = sum((lines[n][1] for n in chosen), Decimal(0))
    route = (
        route_choose(
            document=document.model(),
            action=RequestAction.CLOSE,
            exception=bool(exceptions),
            open_value=open_value,
            routes=routes,
        )
        if routes
        else None
    )
    policy = facts.policy.get(document.pk)
    needs_approval = route is not None or bool(policy and policy.direct_close_needs_approval)
    what = "the whole document" if row.line_nos is None else f"line {', '.join(map(str, chosen))}"
    if row.action == "request":
        if route is None and needs_approval:
            row.error(
                "action",
                f"{document.label}: the policy requires approval but no approval route "
                "matches; ask an administrator to configure one",
            )
        elif route is None:
            row.outcome = "would_close"
            row.note = f"close request without approval route: closes {what} at once"
        else:
            row.outcome = "needs_approval"
            row.note = f"close request for {what}, approval route '{route.name}'"
        return
    if needs_approval:
        if not perms.allows(Perm.CLOSE_REQUEST, document):
            row.error(
                "action",
                perms.refusal(Perm.CLOSE_REQUEST, document) + " (this close "
                "needs approval, so it is submitted as a close request)",
            )
            return
        row.outcome = "needs_approval"
        name = route.name if route is not None else "policy"
        row.note = f"needs approval (route '{name}'): a close request for {what} is submitted"
        return
    row.outcome = "would_close"
    row.note = f"closes {what}" + (" (exception, with remark)" if exceptions else "")


def _judge_reopen(
    row: RowCheck,
    document: DocRow,
    perms: _Permissions,
    closed_periods: list[tuple[date, date, str | None]],
    routes: list[ApprovalRoute],
) -> None:
    day = document.close_date
    in_closed_period = day is not None and _in_closed_period(day, document, closed_periods)
    if perms.allows(Perm.REOPEN_APPROVE, document) and not in_closed_period:
        row.outcome = "would_reopen"
        row.note = "reopens the last close"
        return
    if not perms.allows(Perm.REOPEN_REQUEST, document):
        row.error(
            "action", perms.refusal(Perm.REOPEN_APPROVE, document) + " (nor 'reopen.request')"
        )
        return
    if not row.remark.strip():
        row.error("remark", "a reopen request needs a remark explaining why")
        return
    route = route_choose(
        document=document.model(),
        action=RequestAction.REOPEN,
        exception=False,
        open_value=document.released_value_company,
        routes=routes,
    )
    if route is None:
        row.error(
            "action",
            f"{document.label}: no reopen approval route is configured; a reopen always needs "
            "management approval",
        )
        return
    row.outcome = "reopen_request"
    row.note = f"a reopen request is submitted (approval route '{route.name}')" + (
        "; the close lies in a closed accounting period" if in_closed_period else ""
    )


def import_check(*, actor: AbstractBaseUser, table: Table, keys: list[str]) -> list[RowCheck]:
    """Validate every row; changes nothing. A few queries per 1,000 documents whatever the
    number of rows: documents by (type, number), their lines and rule failures per policy,
    and each permission once per unit and type."""
    reasons = _Reasons.load()
    rows = [RowCheck(row_no, cells) for row_no, cells in table.rows]
    today = timezone.localdate()
    for row in rows:
        _parse_row(row, keys, reasons, today)
    documents = _load_documents(rows)
    perms = _Permissions(actor)
    for row in rows:
        if row.doc_type and row.number:
            _row_document(row, documents.get((row.doc_type, row.number), []), perms)
    facts = _Facts()
    by_type: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        document = row.document
        if document is None or not row.action:
            continue
        if row.action in ("close", "request"):
            if document.close_state != CloseState.OPEN:
                row.error(
                    "number",
                    f"{document.label} is {STATE_WORDS.get(document.close_state, '?')}"
                    + ("; nothing to close" if document.close_state == CloseState.CLOSED else ""),
                )
            else:
                by_type[document.doc_type].add(document.pk)
        elif document.close_state != CloseState.CLOSED:
            row.error(
                "number",
                f"{document.label} is not closed (it is "
                f"{STATE_WORDS.get(document.close_state, '?')}); only a closed document can be "
                "reopened",
            )
    for doc_type, ids in by_type.items():
        _rule_facts(doc_type, sorted(ids), facts)
    close_routes = active_routes(RequestAction.CLOSE)
    reopen_routes = active_routes(RequestAction.REOPEN)
    closed_periods: list[tuple[date, date, str | None]] = list(
        AccountingPeriod.objects.filter(closed=True).values_list(
            "start", "end", "company__unit__code"
        )
    )
    for row in rows:
        if row.errors or row.document is None:
            continue
        if row.action == "reopen":
            _judge_reopen(row, row.document, perms, closed_periods, reopen_routes)
        else:
            _judge_close(row, row.document, facts, perms, close_routes, closed_periods)
    # Among the rows that would run: a document twice only for different lines.
    _check_duplicates([row for row in rows if row.ok])
    return rows


# --- validate, store, execute --------------------------------------------------------------


def _sha256(upload: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    while chunk := upload.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return digest.hexdigest(), size


def _stored(value: Any) -> Any:
    """A cell as JSON can keep it (PostgreSQL's jsonb refuses NUL characters)."""
    if isinstance(value, str):
        if value.isprintable():
            return value
        return CONTROL.sub("\ufffd", value).encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def import_validate(*, actor: AbstractBaseUser, upload: IO[bytes], file_name: str) -> ImportFile:
    """Read and check an uploaded file; store the report and audit it. Changes no document.
    A file that cannot be read at all raises ImportFileRefused and stores nothing."""
    require(actor, Perm.IMPORT_RUN, what="imports")
    check_no_nul(file_name, field="file")
    sha256, size = _sha256(upload)
    table = read_table(upload, file_name)
    keys = check_table(table)
    checks = import_check(actor=actor, table=table, keys=keys)
    valid = [c for c in checks if c.ok]
    width = len(table.headers)
    report = {
        "headers": table.headers,
        "columns": keys,
        "rows": [
            {
                "r": c.row,
                "c": [_stored(v) for v in (c.cells + [""] * (width - len(c.cells)))[:width]],
                "e": [list(e) for e in c.errors],
                "n": c.note,
                "o": c.outcome,
                "d": c.document.pk if c.document is not None and c.ok else None,
                "l": c.label,
                "p": c.params() if c.ok else {},
            }
            for c in checks
        ],
    }
    with transaction.atomic():
        imported = ImportFile.objects.create(
            file_name=file_name[:255],
            sha256=sha256,
            size=size,
            file_format=table.file_format,
            encoding=table.encoding,
            uploaded_by_id=actor.pk,
            total_rows=len(checks),
            valid_rows=len(valid),
            error_rows=len(checks) - len(valid),
            report=report,
        )
        _audit(
            actor,
            AuditAction.IMPORT_VALIDATED,
            imported,
            size=size,
            format=table.file_format,
            encoding=table.encoding,
            rows=imported.total_rows,
            valid_rows=imported.valid_rows,
            error_rows=imported.error_rows,
        )
    return imported


def import_get(*, actor: AbstractBaseUser, import_id: int) -> ImportFile:
    """An import of the actor's own (imports hold other users' data only for them)."""
    return _owned(actor, ImportFile.objects.filter(pk=import_id).first(), import_id)


def _owned(actor: AbstractBaseUser, imported: ImportFile | None, import_id: int) -> ImportFile:
    if imported is None:
        raise NotFound(f"no import #{import_id}")
    if imported.uploaded_by_id != actor.pk:
        raise PermissionDenied(
            f"import #{import_id} belongs to another user", details={"rule": "owner_only"}
        )
    return imported


def _audit(actor: AbstractBaseUser, action: AuditAction, imported: ImportFile, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type=AuditObject.IMPORT,
        object_id=imported.pk,
        object_repr=str(imported)[:200],
        data={"file_name": imported.file_name, "sha256": imported.sha256, **data},
    )


def import_execute(
    *, actor: AbstractBaseUser, import_file: ImportFile, workers: int = 1
) -> BatchJob:
    """Run the valid rows of a validated file as one batch job (each row all-or-nothing, with
    its own result). Rows with errors never run. Executing an import twice is refused: the
    first run's batch holds the results, and running its rows again would change nothing."""
    from closeout.batches.services import batch_raise_if_unsent, batch_start

    with transaction.atomic():
        require(actor, Perm.IMPORT_RUN, what="imports")
        imported = _owned(
            actor,
            ImportFile.objects.select_for_update(no_key=True).filter(pk=import_file.pk).first(),
            import_file.pk,
        )
        if imported.job_id is not None:
            raise InvalidInput(
                f"import #{imported.pk} was already executed as batch #{imported.job_id}; "
                "running it again would change nothing",
                details={"batch": imported.job_id},
            )
        valid = [r for r in imported.report.get("rows", []) if not r["e"] and r["d"]]
        if not valid:
            raise InvalidInput(
                f"import #{imported.pk} has no valid row to execute: fix the rows with errors "
                "and upload the file again",
                details={"field": "file"},
            )
        predicted: dict[str, int] = {}
        for r in valid:
            predicted[r["o"]] = predicted.get(r["o"], 0) + 1
        job = BatchJob.objects.create(
            action=BatchAction.IMPORT,
            selection={
                "import": imported.pk,
                "file_name": imported.file_name,
                "sha256": imported.sha256,
            },
            created_by_id=actor.pk,
            state=BatchState.PREVIEWED,
            total=len(valid),
            predicted=predicted,
        )
        BatchItem.objects.bulk_create(
            (
                BatchItem(
                    job=job,
                    document_id=r["d"],
                    label=r["l"][:100],
                    row_no=r["r"],
                    params=r["p"],
                    predicted=r["o"],
                    predicted_message=r["n"][:2000],
                )
                for r in valid
            ),
            batch_size=5000,
        )
        imported.job = job
        imported.executed_at = timezone.now()
        imported.save(update_fields=["job", "executed_at"])
        _audit(
            actor,
            AuditAction.IMPORT_EXECUTED,
            imported,
            batch=job.pk,
            rows_run=len(valid),
            rows_with_errors_not_run=imported.error_rows,
            predicted=predicted,
        )
        job = batch_start(actor=actor, job=job, workers=workers)
    # Sent after the commit above: a broker that did not answer is said here (the job waits).
    job.refresh_from_db()
    batch_raise_if_unsent(job)
    return job


# --- reading the report --------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    row: int
    cells: list[Any]
    ok: bool
    columns: list[str]  # headers of the columns in error
    message: str
    outcome: str
    document_id: int | None
    label: str


def _header_of(imported: ImportFile, key: str) -> str:
    report = imported.report
    for header, column in zip(report.get("headers", []), report.get("columns", []), strict=False):
        if column == key:
            return str(header)
    return COLUMN[key].header if key in COLUMN else key


def report_rows(imported: ImportFile, *, errors_only: bool = False) -> Iterator[ReportRow]:
    headers = {key: _header_of(imported, key) for key in COLUMN}
    for r in imported.report.get("rows", []):
        if errors_only and not r["e"]:
            continue
        columns = list(dict.fromkeys(headers.get(c, c) for c, _m in r["e"]))
        message = "; ".join(m for _c, m in r["e"]) if r["e"] else r["n"]
        yield ReportRow(r["r"], r["c"], not r["e"], columns, message, r["o"], r.get("d"), r["l"])


def report_table(imported: ImportFile) -> tuple[list[str], Iterable[list[Any]]]:
    """The uploaded columns plus the row number, result and error columns (for .xlsx)."""
    headers = [str(h) for h in imported.report.get("headers", [])] + list(RESULT_HEADERS)

    def rows() -> Iterator[list[Any]]:
        for r in report_rows(imported):
            yield [
                *r.cells,
                r.row,
                "ok" if r.ok else "error",
                ", ".join(r.columns),
                r.message,
            ]

    return headers, rows()


def import_list_for(actor: AbstractBaseUser, *, limit: int = 20) -> list[ImportFile]:
    return list(
        ImportFile.objects.filter(uploaded_by_id=actor.pk)
        .defer("report")
        .select_related("job")
        .order_by("-uploaded_at", "-id")[:limit]
    )


__all__ = [
    "COLUMNS",
    "ImportFileRefused",
    "RowCheck",
    "check_table",
    "import_check",
    "import_execute",
    "import_get",
    "import_list_for",
    "import_validate",
    "report_rows",
    "report_table",
]
