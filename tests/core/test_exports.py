import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from closeout.core.errors import InvalidInput
from closeout.core.exports import export_response, neutralise, write_csv, write_xlsx

DANGEROUS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", '=HYPERLINK("http://x")']


@pytest.mark.parametrize("text", DANGEROUS)
def test_formula_text_is_neutralised(text: str) -> None:
    assert neutralise(text) == "'" + text


def test_plain_values_are_kept() -> None:
    assert neutralise("PO001 采购") == "PO001 采购"
    assert neutralise(Decimal("-5.25")) == Decimal("-5.25")  # numbers are not formulas
    assert neutralise(None) == ""
    assert neutralise(date(2026, 1, 2)) == date(2026, 1, 2)
    local = neutralise(datetime(2026, 1, 2, 0, 0, tzinfo=UTC))
    assert local.tzinfo is None and local.hour == 8  # Asia/Shanghai


def test_xlsx_cells_hold_text_not_formulas() -> None:
    out = io.BytesIO()
    write_xlsx(["单号 number", "remark"], [["PO1", "=1+1"], ["PO2", Decimal("3.5")]], out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows == [("单号 number", "remark"), ("PO1", "'=1+1"), ("PO2", 3.5)]
    assert sheet["B2"].data_type == "s"


def test_csv_has_bom_and_neutralised_cells() -> None:
    out = io.StringIO()
    write_csv(["a", "b"], [["@x", "ok"]], out)
    text = out.getvalue()
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text.lstrip("\ufeff")))) == [["a", "b"], ["'@x", "ok"]]


def test_export_response_formats() -> None:
    csv_response = export_response("csv", filename="q", headers=["a"], rows=[["=b"]])
    body = b"".join(csv_response.streaming_content).decode()  # type: ignore[attr-defined]
    assert "'=b" in body and 'filename="q.csv"' in csv_response["Content-Disposition"]
    xlsx_response = export_response("xlsx", filename="q", headers=["a"], rows=[["x"]])
    assert "q.xlsx" in xlsx_response["Content-Disposition"]
    with pytest.raises(InvalidInput, match="unknown export format 'pdf'"):
        export_response("pdf", filename="q", headers=["a"], rows=[])
