"""The reports page: permission, filters, charts, bounded queries, downloads read back."""

import io
import xml.etree.ElementTree as ET
from typing import Any

import openpyxl
import pytest
from django.contrib.auth.models import User
from django.test import Client

from closeout.audit.models import AuditAction, AuditEvent
from closeout.reports.kpi_base import KpiFilter
from closeout.reports.kpis import kpi_report
from tests.factories import Org, user_with_role
from tests.reports.kpi_data import KpiWorld, build_world


@pytest.fixture
def world(org: Org) -> KpiWorld:
    return build_world(org)


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_the_dashboard_shows_every_kpi_with_its_chart_and_table(
    world: KpiWorld, django_assert_max_num_queries: Any
) -> None:
    client = signed_in(world.boss)
    with django_assert_max_num_queries(30):
        response = client.get("/reports/")
    assert response.status_code == 200
    html = response.content.decode()
    report = kpi_report(world.boss, KpiFilter())
    for table in report.tables:
        assert f'id="kpi-{table.key}"' in html
    assert html.count("<svg") == len(report.tables)
    # Each inline SVG parses as XML and has bars.
    start = html.index("<svg", html.index('id="kpi-cycle_by_doc_type"'))
    svg = html[start : html.index("</svg>", start) + len("</svg>")]
    root = ET.fromstring(svg)  # noqa: S314 (our own output)
    bars = [el for el in root.iter() if el.get("class") == "chart-bar"]
    assert len(bars) == 2 * 3  # median and p90 for payable, purchase order, sales order
    assert "purchase order" in html and "system (automatic close)" in html
    assert 'id="help"' in html


def test_the_dashboard_in_chinese(world: KpiWorld) -> None:
    html = signed_in(world.boss, "zh-hans").get("/reports/").content.decode()
    assert "结案报表" in html and "采购订单" in html and "供应商无法交货" in html


def test_filters_narrow_the_page(world: KpiWorld) -> None:
    html = signed_in(world.boss).get("/reports/", {"doc_type": "sales_order"}).content.decode()
    section = html[html.index('id="kpi-cycle_by_doc_type"') :]
    section = section[: section.index("</section>")]
    assert "sales order" in section and "purchase order" not in section


def test_a_bad_filter_is_shown_next_to_its_field(org: Org) -> None:
    boss = user_with_role("boss", "supervisor", org.company)
    response = signed_in(boss).get(
        "/reports/", {"date_from": "2026-03-09", "date_to": "2026-03-01"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "The period ends before it starts." in html and 'id="kpi-' not in html
    response = signed_in(boss).get("/reports/", {"date_from": "March"})
    assert "Enter a valid date." in response.content.decode()


def test_without_report_view_the_page_says_which_permission_is_missing(org: Org) -> None:
    clerk = user_with_role("clerk", "operator", org.company)
    response = signed_in(clerk).get("/reports/")
    assert response.status_code == 403
    assert "report.view" in response.content.decode()


def test_the_whole_report_downloads_as_one_workbook(world: KpiWorld) -> None:
    response = signed_in(world.boss).get("/reports/", {"export": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('filename="closing-report.xlsx"')
    content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    report = kpi_report(world.boss, KpiFilter())
    assert len(book.sheetnames) == len(report.tables)
    backlog = book.worksheets[[t.key for t in report.tables].index("backlog")]
    rows = list(backlog.iter_rows(values_only=True))
    assert rows[0] == ("Type", "Age (days)", "Open documents", "Value (company currency)")
    assert ("payable", ">180", 1, 20) in rows
    exported = AuditEvent.objects.get(action=AuditAction.DATA_EXPORTED)
    assert exported.actor_name == "boss" and exported.data["format"] == "xlsx"
    assert exported.data["tables"] == [t.key for t in report.tables]


def test_one_table_downloads_as_csv_and_xlsx(world: KpiWorld) -> None:
    client = signed_in(world.boss)
    response = client.get("/reports/", {"export": "csv", "table": "released_by_reason"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    lines = text.strip().splitlines()
    assert lines[0] == "Close reason,Documents,Lines,Released value"
    assert lines[1] == "Supplier cannot deliver,1,1,180.00"
    exported = AuditEvent.objects.get(action=AuditAction.DATA_EXPORTED)
    assert exported.data["tables"] == ["released_by_reason"] and exported.data["format"] == "csv"
    response = client.get(
        "/reports/",
        {"export": "xlsx", "table": "reopen_by_closed_by", "doc_type": "purchase_order"},
    )
    content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert ("closer1", 1, 1, 1) in rows


def test_an_unknown_table_or_format_is_refused_in_words(org: Org) -> None:
    client = signed_in(user_with_role("boss", "supervisor", org.company))
    response = client.get("/reports/", {"export": "csv", "table": "nope"})
    assert response.status_code == 400 and "nope" in response.content.decode()
    response = client.get("/reports/", {"export": "pdf", "table": "backlog"})
    assert response.status_code == 400 and "“pdf”; use xlsx or csv" in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.DATA_EXPORTED).exists()
