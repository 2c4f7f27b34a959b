"""`closeout report kpis`: text, CSV and one workbook, filters, and one-line refusals."""

import io
from io import StringIO
from pathlib import Path

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from closeout.audit.models import AuditAction, AuditEvent
from closeout.reports.kpi_base import KpiFilter
from closeout.reports.kpis import kpi_report
from closeout.reports.present import displayed
from tests.factories import Org, user_with_role
from tests.reports.kpi_data import KpiWorld, build_world


@pytest.fixture
def world(org: Org) -> KpiWorld:
    return build_world(org)


def run(*args: str) -> str:
    out = StringIO()
    call_command("report", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_text_shows_every_table_in_the_chosen_language(world: KpiWorld) -> None:
    text = run("kpis", "--as", "boss", "--lang", "en")
    for table in kpi_report(world.boss, KpiFilter()).tables:
        assert f"[{table.key}]" in text
    assert "purchase order  3       10      27.6" in text
    chinese = run("kpis", "--as", "boss", "--lang", "zh", "--type", "purchase_order")
    assert "结案周期（天），按单据类型" in chinese and "采购订单" in chinese
    assert "销售订单" not in chinese.split("[cycle_by_org_unit]")[0]


def test_csv_of_one_table_with_filters(world: KpiWorld, tmp_path: Path) -> None:
    out = tmp_path / "reopen.csv"
    run(
        "kpis",
        "--as",
        "boss",
        "--lang",
        "en",
        "--format",
        "csv",
        "--table",
        "reopen_by_closed_by",
        "--org",
        "D-A",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--out",
        str(out),
    )
    lines = out.read_text(encoding="utf-8-sig").strip().splitlines()
    # Dept A includes its team, whose PO the sweep closed.
    assert lines == [
        "Closed by,Closes,Reopens,Reopen rate",
        "closer1,1,1,1.0",
        "closer2,1,0,0.0",
        "system (automatic close),1,0,0.0",
    ]
    exported = AuditEvent.objects.get(action=AuditAction.DATA_EXPORTED)
    assert exported.actor_name == "boss"
    assert exported.data["filter"] == {
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
        "doc_type": None,
        "org_unit": "D-A",
    }


def test_xlsx_has_one_sheet_per_table(world: KpiWorld, tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    message = run("kpis", "--as", "boss", "--lang", "en", "--format", "xlsx", "--out", str(out))
    with translation.override("en"):
        tables = displayed(kpi_report(world.boss, KpiFilter()))
        headers = [[str(h) for h in t.headers] for t in tables]
    assert message.strip() == f"wrote {len(tables)} tables to {out}"
    book = openpyxl.load_workbook(io.BytesIO(out.read_bytes()), read_only=True)
    assert len(book.worksheets) == len(tables)
    for sheet, table, names in zip(book.worksheets, tables, headers, strict=True):
        rows = list(sheet.iter_rows(values_only=True))
        assert list(rows[0]) == names
        assert len(rows) == len(table.rows) + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "--format: unknown format 'pdf'; use table, csv or xlsx"),
        (["--format", "xlsx"], "--format xlsx needs --out FILE.xlsx"),
        (["--format", "csv"], "--format csv writes one table: choose it with --table"),
        (["--table", "nope"], "unknown report table 'nope'"),
        (["--type", "po"], "unknown document type 'po'"),
        (["--org", "NOPE"], "unknown organisation unit 'NOPE'"),
        (["--from", "1.3.2026"], "--from: '1.3.2026' is not a date (use YYYY-MM-DD)"),
        (["--from", "2026-03-09", "--to", "2026-03-01"], "the period starts (2026-03-09)"),
    ],
)
def test_bad_input_is_one_clear_error(org: Org, args: list[str], message: str) -> None:
    user_with_role("boss", "supervisor", org.company)
    with pytest.raises(CommandError) as error:
        run("kpis", "--as", "boss", *args)
    assert message in str(error.value)


def test_a_user_without_report_view_is_refused(org: Org) -> None:
    user_with_role("closer1", "operator", org.company)
    with pytest.raises(CommandError, match=r"closer1 lacks permission 'report.view'"):
        run("kpis", "--as", "closer1")
