"""The import pages: upload with labelled field and plain errors next to it, the report with
its download, execution into the batch page, the templates, and other users kept out."""

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from closeout.batches.models import BatchState, ImportFile
from closeout.documents.models import CloseState
from tests.batches.test_imports import (  # noqa: F401 (_inline_tasks: an autouse fixture)
    _inline_tasks,
    csv_bytes,
    xlsx_bytes,
)
from tests.factories import PO, Org, ready_document, user_with_role
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer(org: Org) -> User:
    return user_with_role("web-buyer", "operator", org.dept_a)


def test_upload_report_download_and_execute(
    org: Org, buyer: User, django_capture_on_commit_callbacks: Any
) -> None:
    document = ready_document(PO, org.dept_a)
    client = signed_in(buyer)
    page = client.get(reverse("web:imports"))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<label for="id_file">File (.xlsx or .csv)</label>' in html
    assert 'id="template-xlsx"' in html and 'id="help"' in html
    content = xlsx_bytes(
        [
            [PO, document.number, "", "close", "completed", "", ""],
            [PO, "MISSING", "", "close", "completed", "", ""],
        ]
    )
    response = client.post(
        reverse("web:imports"), {"file": SimpleUploadedFile("close.xlsx", content)}
    )
    imported = ImportFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web:import", args=[imported.pk])
    html = client.get(response["Location"]).content.decode()
    assert 'id="count-valid">1<' in html and 'id="count-errors">1<' in html
    assert "unknown document: no purchase_order numbered MISSING" in html
    assert "Valid rows that will run as a batch job: 1." in html
    assert "Rows with errors, which will not run: 1." in html
    errors_only = client.get(response["Location"], {"show": "errors"}).content.decode()
    assert "MISSING" in errors_only and document.number not in errors_only

    report = client.get(reverse("web:import_report", args=[imported.pk]))
    assert report["Content-Disposition"].endswith(f'filename="import-{imported.pk}-report.xlsx"')
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(b"".join(report.streaming_content))).active  # type: ignore[attr-defined]
    assert sheet is not None
    assert [c.value for c in sheet[3]][-3:] == [
        "error",
        "单号 number",
        "unknown document: no purchase_order numbered MISSING",
    ]

    with django_capture_on_commit_callbacks(execute=True):
        executed = client.post(reverse("web:import_execute", args=[imported.pk]))
    imported.refresh_from_db()
    assert imported.job is not None
    assert executed["Location"] == reverse("web:batch", args=[imported.job.pk])
    assert imported.job.state == BatchState.DONE
    document.refresh_from_db()
    assert document.close_state == CloseState.CLOSED
    batch_page = client.get(executed["Location"]).content.decode()
    assert 'id="percent">100%' in batch_page and f"row 2: purchase_order {document.number}" in (
        batch_page
    )
    # Executing again shows the same batch and changes nothing.
    again = client.post(reverse("web:import_execute", args=[imported.pk]))
    assert again["Location"] == executed["Location"]
    listing = client.get(reverse("web:imports")).content.decode()
    assert "close.xlsx" in listing and f"#{imported.job.pk}</a> 100%" in listing


def test_a_bad_file_shows_its_error_next_to_the_field(org: Org, buyer: User) -> None:
    client = signed_in(buyer)
    response = client.post(
        reverse("web:imports"), {"file": SimpleUploadedFile("fake.xlsx", b"%PDF-1.4 x")}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="file-error"' in html and "it is a PDF document renamed .xlsx" in html
    assert not ImportFile.objects.exists()
    response = client.post(reverse("web:imports"), {})
    assert response.status_code == 422 and 'id="file-error"' in response.content.decode()


def test_without_import_permission_the_page_says_so(org: Org) -> None:
    auditor = user_with_role("web-auditor", "auditor", org.company)
    client = signed_in(auditor)
    assert 'id="no-import"' in client.get(reverse("web:imports")).content.decode()
    response = client.post(
        reverse("web:imports"),
        {"file": SimpleUploadedFile("a.csv", csv_bytes([[PO, "X", "", "close", "completed"]]))},
    )
    assert "you lack the permission" in response.content.decode()
    assert "import.run" in response.content.decode()


def test_another_users_import_is_not_shown(org: Org, buyer: User) -> None:
    document = ready_document(PO, org.dept_a)
    client = signed_in(buyer)
    client.post(
        reverse("web:imports"),
        {
            "file": SimpleUploadedFile(
                "a.csv", csv_bytes([[PO, document.number, "", "close", "completed"]])
            )
        },
    )
    imported = ImportFile.objects.get()
    other = signed_in(user_with_role("web-other", "operator", org.dept_a))
    for name in ("web:import", "web:import_report"):
        response = other.get(reverse(name, args=[imported.pk]))
        assert response.status_code == 403
        assert "belongs to another user" in response.content.decode()
    assert other.post(reverse("web:import_execute", args=[imported.pk])).status_code == 403
    assert imported.job_id is None


def test_templates_download(org: Org, buyer: User) -> None:
    client = signed_in(buyer)
    xlsx = client.get(reverse("web:import_template", args=["xlsx"]))
    assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
    assert 'filename="closeout-import-template.xlsx"' in xlsx["Content-Disposition"]
    text = client.get(reverse("web:import_template", args=["csv"])).content.decode("utf-8")
    assert text.startswith("\ufeff单据类型 document type,")
    assert client.get(reverse("web:import_template", args=["pdf"])).status_code == 404


def test_the_pages_speak_chinese(org: Org, buyer: User) -> None:
    client = signed_in(buyer, "zh-hans")
    html = client.get(reverse("web:imports")).content.decode()
    assert "<h1>导入结案指令</h1>" in html and "上传并校验" in html
    assert '<label for="id_file">文件（.xlsx 或 .csv）</label>' in html
    assert "下载模板（.xlsx 或 .csv）" in html  # the help panel


def _report_sheet(client: Any, imported: ImportFile) -> Any:
    from openpyxl import load_workbook

    report = client.get(reverse("web:import_report", args=[imported.pk]))
    assert report.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(report.streaming_content)))
    return book.active


def test_the_report_download_reads_in_the_page_language(org: Org, buyer: User) -> None:
    """Issue 17: a Chinese page downloads a Chinese report (its headings, results and the
    messages the catalogue holds); an English page the report as it always was."""
    document = ready_document(PO, org.dept_a)
    content = xlsx_bytes(
        [
            [PO, document.number, "", "close", "completed", "", ""],
            [PO, document.number, "", "reopen", "", "", "2026-01-10"],
        ]
    )
    zh = signed_in(buyer, "zh-hans")
    zh.post(reverse("web:imports"), {"file": SimpleUploadedFile("close.xlsx", content)})
    imported = ImportFile.objects.get()
    sheet = _report_sheet(zh, imported)
    assert sheet.title == "导入报告"
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    header = next(r for r in rows if "行号" in r)
    assert header[-4:] == ["行号", "结果", "出错列", "说明"]
    results = [r[-3] for r in rows[rows.index(header) + 1 :]]
    assert results == ["通过", "错误"]
    failed = rows[-1]
    assert "反结案不填结案日期：请留空" in failed[-1]
    assert "leave it empty" not in failed[-1]

    sheet = _report_sheet(signed_in(buyer, "en"), imported)
    assert sheet.title == "report"
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    header = next(r for r in rows if "行 row" in r)
    assert header[-4:] == ["行 row", "结果 result", "出错列 column", "说明 message"]
    assert [r[-3] for r in rows[rows.index(header) + 1 :]] == ["ok", "error"]
    assert "a reopen takes no close date: leave it empty" in rows[-1][-1]
