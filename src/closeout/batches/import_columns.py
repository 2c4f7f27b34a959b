"""The columns of an import file (导入结案指令): their keys and aliases in both languages, the
actions, and the file-level checks (headers, formulas, merged cells). The rows' cells are read
in `import_parse`."""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from closeout.batches.import_files import Table, column_letter, refuse, split_ref
from closeout.closing.models import ReasonCode
from closeout.core.labels import ZH, label_in
from closeout.documents.models import DocType

if TYPE_CHECKING:
    pass

MAX_REMARK = 2000
MAX_NUMBER = 60


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
    Column(
        "dimension",
        "结案维度",
        "close dimension",
        False,
        16,
        "只关闭该维度：采购订单 收货/开票/付款，销售订单 发货/开票/收款；留空 = 整行结案",
        "close only this dimension: receiving, invoicing or payment for a purchase order, "
        "shipping, invoicing or collection for a sales order; empty = close the lines",
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
def norm(text: str) -> str:
    """Header and value text compared loosely: case, underscores, spacing and brackets."""
    text = re.sub(r"[()（）\[\]【】*:：]", " ", text.replace("_", " "))
    return " ".join(text.casefold().split())


def alias_map(code: str, *names: str) -> dict[str, str]:
    result = {norm(code): code}
    for name in names:
        result[norm(name)] = code
        result[norm(f"{name} {code}")] = code
        result[norm(f"{code} {name}")] = code
    if len(names) == 2:
        result[norm(f"{names[0]} {names[1]}")] = code
    return result


HEADER_ALIASES: dict[str, str] = {}
for _c in COLUMNS:
    HEADER_ALIASES |= alias_map(_c.key, _c.zh, _c.en)
HEADER_ALIASES |= {norm("type"): "doc_type", norm("单号 document number"): "number"}
HEADER_ALIASES |= {norm("reason"): "reason", norm("原因"): "reason", norm("lines"): "lines"}
HEADER_ALIASES |= {norm("dimension"): "dimension", norm("关闭维度"): "dimension"}


@lru_cache(maxsize=1)
def doc_type_aliases() -> dict[str, str]:
    """A type's code, its Chinese and its English name (from gettext) all name it: a file
    written in either language is read (the template offers the Chinese one)."""
    aliases: dict[str, str] = {}
    for code, label in DocType.choices:
        aliases |= alias_map(code, label_in(label, ZH), label_in(label, "en"))
    return aliases


ACTION_ALIASES: dict[str, str] = {}
for _code, (_zh, _what) in ACTIONS.items():
    ACTION_ALIASES |= alias_map(_code, _zh)
ACTION_ALIASES |= {norm("手工结案"): "close", norm("结案申请"): "request"}
ACTION_ALIASES |= {norm("request close"): "request", norm("close request"): "request"}


def doc_type_choice(code: str, label: object) -> str:
    """A type as the template's drop-down list offers it: its Chinese name and its code."""
    return f"{label_in(label, ZH)} {code}"


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
        key = HEADER_ALIASES.get(norm(header))
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
