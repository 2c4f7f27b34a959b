"""The downloadable template of the import of close instructions: a data sheet with
bilingual headers and drop-down lists (types, actions, reason codes in use, close dimensions),
an instructions sheet, and a CSV variant."""

import csv
import io
from typing import Any

from django.utils import translation
from django.utils.translation import gettext_noop

from closeout.batches.import_columns import ACTIONS, COLUMNS, doc_type_choice, reason_choice
from closeout.batches.import_files import column_letter
from closeout.closing.dimensions import dimensions_of
from closeout.closing.models import ReasonCode
from closeout.core.errors import InvalidInput
from closeout.documents.models import DocType


def _user_reasons() -> list[ReasonCode]:
    """Each code once (the group's, else a company's): the check names each row's company."""
    by_code: dict[str, ReasonCode] = {}
    for r in ReasonCode.objects.filter(active=True, system=False).order_by("action", "code"):
        if r.code not in by_code or r.company_id is None:
            by_code[r.code] = r
    return list(by_code.values())


def dimension_choices() -> list[str]:
    """The close dimensions as the drop-down list offers them: "收货 receiving", …"""
    choices: dict[str, str] = {}
    for doc_type in DocType.values:
        for dimension in dimensions_of(doc_type):
            with translation.override("zh-hans"):
                choices.setdefault(dimension.code, f"{dimension.label} {dimension.code}")
    return list(choices.values())


def import_template(fmt: str) -> bytes:
    """The template as .xlsx (data sheet with drop-down lists, an instructions sheet) or as
    CSV (the header row, UTF-8 with a byte-order mark so Excel shows the Chinese)."""
    headers = [c.header for c in COLUMNS]
    if fmt == "csv":
        buffer = io.StringIO()
        buffer.write("\ufeff")
        csv.writer(buffer).writerow(headers)
        return buffer.getvalue().encode("utf-8")
    if fmt != "xlsx":
        raise InvalidInput(
            gettext_noop("unknown template format '%(format)s'; use xlsx or csv"),
            params={"format": fmt},
        )
    return _template_xlsx(headers)


def _template_xlsx(headers: list[str]) -> bytes:
    """The import template workbook: the input sheet with its headings, drop-down lists and date
    check, the instructions sheet and the reason codes the user may use. Long because openpyxl
    builds each sheet cell by cell; the columns themselves come from `COLUMNS`."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    reasons = _user_reasons()
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None  # noqa: S101 (a new workbook has one sheet)
    sheet.title = "导入 import"
    sheet.append(headers)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for index, column in enumerate(COLUMNS):
        cell = sheet.cell(row=1, column=index + 1)
        cell.font, cell.fill = bold, fill
        letter = column_letter(index)
        sheet.column_dimensions[letter].width = column.width
        if column.key in ("number", "lines"):
            # Text, so that "1,3" stays "1,3" and numbers keep their leading zeros.
            sheet.column_dimensions[letter].number_format = "@"
    sheet.freeze_panes = "A2"

    codes = workbook.create_sheet("codes")
    codes.append(
        [
            "单据类型 document type",
            "动作 action",
            "原因代码 reason code",
            "结案维度 close dimension",
        ]
    )
    types = [doc_type_choice(code, str(label)) for code, label in DocType.choices]
    actions = [f"{zh} {code}" for code, (zh, _what) in ACTIONS.items()]
    dimensions = dimension_choices()
    for i in range(max(len(types), len(actions), len(reasons), len(dimensions))):
        codes.append(
            [
                types[i] if i < len(types) else None,
                actions[i] if i < len(actions) else None,
                reason_choice(reasons[i]) if i < len(reasons) else None,
                dimensions[i] if i < len(dimensions) else None,
            ]
        )
    codes.sheet_state = "hidden"
    last = f"{1 + 50_000}"
    lists = {
        "doc_type": f"codes!$A$2:$A${1 + len(types)}",
        "action": f"codes!$B$2:$B${1 + len(actions)}",
        "reason": f"codes!$C$2:$C${1 + max(len(reasons), 1)}",
        "dimension": f"codes!$D$2:$D${1 + len(dimensions)}",
    }
    for index, column in enumerate(COLUMNS):
        letter = column_letter(index)
        if column.key in lists:
            validation = DataValidation(
                type="list",
                formula1=lists[column.key],
                allow_blank=True,
                showErrorMessage=True,
                errorTitle="无效的值 invalid value",
                error="请从下拉列表选择 choose a value from the list",
            )
        elif column.key == "close_date":
            validation = DataValidation(
                type="date",
                operator="lessThanOrEqual",
                formula1="TODAY()",
                allow_blank=True,
                showErrorMessage=True,
                errorTitle="无效的日期 invalid date",
                error="结案日期不能晚于今天 the close date cannot be after today",
            )
        else:
            continue
        validation.add(f"{letter}2:{letter}{last}")
        sheet.add_data_validation(validation)

    _instructions(workbook, reasons)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _instructions(workbook: Any, reasons: list[ReasonCode]) -> None:
    """The instructions sheet: the steps, each column, the actions and the reason codes."""
    from openpyxl.styles import Alignment, Font

    notes = workbook.create_sheet("说明 instructions", 1)
    notes.column_dimensions["A"].width = 26
    notes.column_dimensions["B"].width = 10
    notes.column_dimensions["C"].width = 48
    notes.column_dimensions["D"].width = 60
    wrap = Alignment(wrap_text=True, vertical="top")
    rows: list[list[Any]] = [
        ["导入结案指令 Import of close instructions"],
        [],
        ["步骤 Steps"],
        [
            "1",
            "",
            "在第一页填写，每行一条指令，不要修改表头",
            "fill the first sheet, one instruction per row; keep the header row as it is",
        ],
        [
            "2",
            "",
            "上传文件，先校验，不做任何修改",
            "upload the file: it is validated first and nothing changes",
        ],
        [
            "3",
            "",
            "阅读校验报告，改正出错的行后重新上传",
            "read the report; fix the rows with errors and upload again",
        ],
        [
            "4",
            "",
            "确认后执行有效的行（出错的行不执行）",
            "confirm to run the valid rows (rows with errors never run)",
        ],
        ["5", "", "在批量作业页查看每行的结果", "check each row's result on the batch page"],
        [],
        ["列 Column", "必填 required", "说明", "meaning"],
    ]
    rows += [[c.header, "是 yes" if c.required else "否 no", c.help_zh, c.help_en] for c in COLUMNS]
    rows += [[], ["动作 Actions"]]
    rows += [[f"{zh} {code}", "", what, ""] for code, (zh, what) in ACTIONS.items()]
    rows += [[], ["原因代码 Reason codes", "动作 for", "名称", "name"]]
    rows += [[r.code, r.action, r.label_zh, r.label_en] for r in reasons]
    rows += [
        [],
        [
            "注意 Notes",
            "",
            "不接受公式、合并单元格、宏和加密文件；每个文件最多 50,000 行",
            "formulas, merged cells, macros and password-protected files are refused; at most "
            "50,000 rows per file",
        ],
    ]
    for row in rows:
        notes.append(row)
    for row_cells in notes.iter_rows():
        for cell in row_cells:
            cell.alignment = wrap
    for row_no in (1, 3, 10):
        notes.cell(row=row_no, column=1).font = Font(bold=True)
