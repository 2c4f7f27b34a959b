"""Import of close instructions through the API: template, upload with the per-row report,
the stored import, execution as a batch job; refusals for bad files and other users."""

import io
from typing import Any

import pytest
from django.test import Client
from openpyxl import load_workbook

from closeout.batches.models import ImportFile
from closeout.documents.models import CloseState, Document
from tests.api.conftest import Api, ApiFactory, download, error_of, upload
from tests.batches.test_imports import (  # noqa: F401 (_inline_tasks: an autouse fixture)
    _inline_tasks,
    csv_bytes,
    xlsx_bytes,
)
from tests.factories import PO, Org, ready_document

pytestmark = pytest.mark.django_db


def test_template_in_both_formats(api_for: ApiFactory) -> None:
    api = api_for("operator")
    xlsx = api.get("/api/imports/template")
    assert xlsx.status_code == 200 and xlsx["Content-Disposition"].endswith('.xlsx"')
    headers = next(
        load_workbook(io.BytesIO(download(xlsx))).worksheets[0].iter_rows(values_only=True)
    )
    text = download(api.get("/api/imports/template", format="csv")).decode("utf-8")
    assert text.startswith("\ufeff") and text[1:].strip().split(",") == list(headers)
    bad = api.get("/api/imports/template", format="pdf")
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "format"
    # The template holds no data: any signed-in caller may fetch it (as on the page), but
    # not an anonymous one.
    assert api_for(None).get("/api/imports/template").status_code == 200
    anonymous = Api(Client(), None).get("/api/imports/template")
    assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "unauthenticated"


def test_upload_report_and_execute(
    api_for: ApiFactory, org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    document = ready_document(PO, org.dept_a)
    api = api_for("operator", unit=org.dept_a)
    content = xlsx_bytes(
        [
            [PO, document.number, "", "close", "completed", "", ""],
            [PO, "MISSING", "", "close", "completed", "", ""],
        ]
    )
    response = upload(api, "/api/imports", "file", "close.xlsx", content)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["total_rows"], body["valid_rows"], body["error_rows"]) == (2, 1, 1)
    ok, bad = body["rows"]
    assert ok["status"] == "ok" and ok["row"] == 2
    assert bad["status"] == "error" and bad["row"] == 3 and bad["column"]
    assert "unknown document: no purchase_order numbered MISSING" in bad["message"]
    assert api.get(f"/api/imports/{body['id']}").json() == body
    with django_capture_on_commit_callbacks(execute=True):
        executed = api.post(f"/api/imports/{body['id']}/execute")
    assert executed.status_code == 201, executed.content
    job = executed.json()
    assert job["total"] == 1 and job["action"] == "import"
    assert api.get(f"/api/batches/{job['id']}").json()["succeeded"] == 1
    document.refresh_from_db()
    assert document.close_state == CloseState.CLOSED
    assert api.get(f"/api/imports/{body['id']}").json()["batch"] == job["id"]
    twice = api.post(f"/api/imports/{body['id']}/execute")
    assert twice.status_code == 422 and str(job["id"]) in error_of(twice)["message"]


def test_upload_honours_idempotency_key(api_for: ApiFactory, org: Org) -> None:
    document = ready_document(PO, org.dept_a)
    api = api_for("operator")
    content = csv_bytes([[PO, document.number, "", "close", "completed", "", ""]])
    first = upload(api, "/api/imports", "file", "c.csv", content, **{"Idempotency-Key": "imp-1"})
    again = upload(api, "/api/imports", "file", "c.csv", content, **{"Idempotency-Key": "imp-1"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replay"] == "true" and again.json()["id"] == first.json()["id"]
    assert ImportFile.objects.count() == 1


def test_imports_need_import_run_and_ownership(api_for: ApiFactory, org: Org) -> None:
    document = ready_document(PO, org.dept_a)
    content = csv_bytes([[PO, document.number, "", "close", "completed", "", ""]])
    refused = upload(api_for("auditor"), "/api/imports", "file", "c.csv", content)
    assert refused.status_code == 403 and "import.run" in error_of(refused)["message"]
    assert error_of(refused)["details"]["permission"] == "import.run"
    owner = api_for("operator")
    imported = upload(owner, "/api/imports", "file", "c.csv", content).json()
    other = api_for("operator")
    for response in (
        other.get(f"/api/imports/{imported['id']}"),
        other.post(f"/api/imports/{imported['id']}/execute"),
    ):
        assert response.status_code == 403
        assert error_of(response)["details"]["rule"] == "owner_only"
    assert ImportFile.objects.get().job_id is None
    assert Document.objects.get(pk=document.pk).close_state == CloseState.OPEN


def test_bad_files_are_refused_with_the_reason(api_for: ApiFactory, org: Org) -> None:
    api = api_for("operator")
    missing = api.client.post("/api/imports", {}, headers=api._headers(None))
    assert missing.status_code == 422 and error_of(missing)["details"]["field"] == "file"
    not_a_sheet = upload(api, "/api/imports", "file", "notes.pdf", b"%PDF-1.4 not a table")
    assert not_a_sheet.status_code == 422
    body = error_of(not_a_sheet)
    assert body["code"] == "import_file_refused" and body["details"]["field"] == "file"
    no_columns = upload(api, "/api/imports", "file", "c.csv", b"foo,bar\n1,2\n")
    assert no_columns.status_code == 422 and error_of(no_columns)["details"]["field"] == "file"
    assert not ImportFile.objects.exists()
    assert api.get("/api/imports/999999").status_code == 404
    assert api.post("/api/imports/999999/execute").status_code == 404
    nothing_valid = upload(
        api,
        "/api/imports",
        "file",
        "c.csv",
        csv_bytes([[PO, "MISSING", "", "close", "completed", "", ""]]),
    ).json()
    refused = api.post(f"/api/imports/{nothing_valid['id']}/execute")
    assert refused.status_code == 422 and "no valid row" in error_of(refused)["message"]
