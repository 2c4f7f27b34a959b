"""Several tables in one workbook: a sheet each, Excel-safe unique titles, formulas neutralised."""

import io

import openpyxl

from closeout.core.exports import write_xlsx_sheets


def test_each_table_gets_its_sheet_and_formulas_stay_text() -> None:
    out = io.BytesIO()
    long_title = "Open value released by manual closes, top partners"
    write_xlsx_sheets(
        [
            ("Backlog [days]: a/b?", ["type", "n"], [["=1+1", 3]]),
            (long_title, ["partner"], [["@SUM(A1)"]]),
            (long_title, ["partner"], [["ok"]]),
        ],
        out,
    )
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    assert book.sheetnames == [
        "Backlog _days__ a_b_",
        long_title[:31],
        long_title[:27] + " (2)",
    ]
    first = list(book.worksheets[0].iter_rows(values_only=True))
    assert first == [("type", "n"), ("'=1+1", 3)]
    assert book.worksheets[0].freeze_panes == "A2"
    assert book.worksheets[1]["A2"].value == "'@SUM(A1)"
    assert book.worksheets[0]["A1"].font.bold
