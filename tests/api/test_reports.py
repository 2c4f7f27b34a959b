"""The closing KPIs through the API: JSON tables limited like the page, and downloads."""

import csv
import io

import pytest
from openpyxl import load_workbook

from closeout.audit.models import AuditAction, AuditEvent
from closeout.documents.models import Document
from closeout.reports.kpi_base import KpiFilter
from closeout.reports.kpis import kpi_report
from tests.api.conftest import ApiFactory, download, error_of
from tests.factories import Org, user_with_role
from tests.reports.test_archive import closed_doc

pytestmark = pytest.mark.django_db

EN = {"Accept-Language": "en"}  # titles and headers follow the language (Chinese by default)


@pytest.fixture
def closes(org: Org) -> list[Document]:
    closer = user_with_role("closer", "operator", org.company)
    return [closed_doc(closer, org.dept_a, 5), closed_doc(closer, org.dept_a, 6)]


def test_kpis_as_tables_limited_to_the_viewer(
    api_for: ApiFactory, org: Org, closes: list[Document]
) -> None:
    api = api_for("finance")
    response = api.get("/api/reports/kpis", headers=EN)
    assert response.status_code == 200, response.content
    body = response.json()
    expected = kpi_report(api.user, KpiFilter())
    assert [t["key"] for t in body["tables"]] == [t.key for t in expected.tables]
    kinds = next(t for t in body["tables"] if t["key"] == "close_kind")
    assert kinds["headers"][:4] == ["Type", "Month", "Automatic", "Manual"]
    assert sum(row[3] for row in kinds["rows"]) == 2
    released = next(t for t in body["tables"] if t["key"] == "released_by_reason")
    assert all(isinstance(row[-1], str) for row in released["rows"])  # money as decimal strings
    # A viewer of department B sees none of department A's closes (as on the page).
    dept_b = api_for("finance", unit=org.dept_b).get("/api/reports/kpis").json()
    assert next(t for t in dept_b["tables"] if t["key"] == "close_kind")["rows"] == []
    filtered = api.get("/api/reports/kpis", doc_type="sales_order", org_unit=org.dept_a.code)
    assert next(t for t in filtered.json()["tables"] if t["key"] == "close_kind")["rows"] == []


def test_kpi_downloads_are_audited(api_for: ApiFactory, closes: list[Document]) -> None:
    api = api_for("finance")
    response = api.get("/api/reports/kpis", headers=EN, format="csv", table="close_kind")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('closing-report-close_kind.csv"')
    rows = list(csv.reader(io.StringIO(download(response).decode("utf-8").lstrip("\ufeff"))))
    assert rows[0][:2] == ["Type", "Month"] and len(rows) == 2
    workbook = api.get("/api/reports/kpis", format="xlsx")
    assert workbook.status_code == 200
    sheets = load_workbook(io.BytesIO(download(workbook)), read_only=True).sheetnames
    assert len(sheets) == len(kpi_report(api.user, KpiFilter()).tables)
    events = AuditEvent.objects.filter(action=AuditAction.DATA_EXPORTED, object_id="kpis")
    assert [e.data["format"] for e in events.order_by("seq")] == ["csv", "xlsx"]


def test_kpis_need_report_view(api_for: ApiFactory, closes: list[Document]) -> None:
    response = api_for("operator").get("/api/reports/kpis")
    assert response.status_code == 403
    body = error_of(response)
    assert body["code"] == "permission_denied" and "report.view" in body["message"]
    assert body["details"]["permission"] == "report.view"


def test_kpis_bad_input_names_the_field(api_for: ApiFactory, closes: list[Document]) -> None:
    api = api_for("finance")
    cases = [
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "date_from"),
        ({"doc_type": "nope"}, "type"),
        ({"org_unit": "NOPE"}, "org_unit"),
        ({"format": "pdf"}, "format"),
        ({"format": "csv"}, "table"),
        ({"format": "xlsx", "table": "nope"}, "table"),
        ({"date_from": "March"}, "date_from"),
    ]
    for params, field in cases:
        response = api.get("/api/reports/kpis", **params)
        assert response.status_code == 422, (params, response.content)
        assert error_of(response)["details"]["field"] == field, params
    assert not AuditEvent.objects.filter(action=AuditAction.DATA_EXPORTED).exists()
