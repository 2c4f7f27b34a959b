"""The consistency-check pages, the batch verification page and the .xlsx/CSV exports of the
queue, the batch results and the audit log (formula cells neutralised end to end)."""

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponseBase
from django.urls import reverse
from openpyxl import load_workbook

from closeout.audit.models import AuditAction, AuditEvent
from closeout.batches.models import BatchAction
from closeout.batches.services import batch_create, batch_start
from closeout.core.services import partner_get_or_create
from closeout.documents.models import Document, EventKind
from closeout.reports.models import DiagnosticRun, PostCloseVerification
from tests.factories import PO, SO, Org, make_document, post, ready_document, user_with_role
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://evil.example","click")'


def body(response: HttpResponseBase) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return response.getvalue() if hasattr(response, "getvalue") else response.content  # type: ignore[attr-defined]


def xlsx_rows(response: HttpResponseBase) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(body(response)), read_only=True).active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def csv_rows(response: HttpResponseBase) -> list[list[str]]:
    text = body(response).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def over(org: Org) -> dict[str, Document]:
    """An over-received order in department A (partner named like a formula) and an
    over-shipped sales order in department B."""
    po = make_document(PO, org.dept_a, ((10, 5),))
    post(po, EventKind.RECEIPT, 1, 12)
    evil = partner_get_or_create(code="EVIL", name=EVIL)
    Document.objects.filter(pk=po.pk).update(partner=evil)
    so = make_document(SO, org.dept_b, ((4, 10),))
    post(so, EventKind.SHIPMENT, 1, 6)
    return {"po": po, "so": so}


def test_diagnostics_page_runs_and_shows_counts(
    org: Org,
    over: dict[str, Document],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True  # the run is queued; here it runs on commit
    client = signed_in(user_with_role("rep", "auditor", org.company))
    page = client.get(reverse("web:diagnostics"))
    assert page.status_code == 200
    assert b"have not run yet" in page.content and b"every 24 hours" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("web:diagnostics"))
    assert response.status_code == 302
    assert b"running in the background" in client.get(response["Location"]).content
    run = DiagnosticRun.objects.get()
    assert run.counts["po_quantities"] == 1 and run.run_by is not None
    page = client.get(reverse("web:diagnostics"))
    assert b"by rep" in page.content
    assert reverse("web:diagnostic", args=["po_quantities"]).encode() in page.content


def test_pages_need_report_view(org: Org, over: dict[str, Document]) -> None:
    client = signed_in(user_with_role("opr", "operator", org.company))
    for url in (reverse("web:diagnostics"), reverse("web:diagnostic", args=["po_quantities"])):
        response = client.get(url)
        assert response.status_code == 403
        assert b"report.view" in response.content
    assert client.post(reverse("web:diagnostics")).status_code == 403
    assert not DiagnosticRun.objects.exists()


def test_drill_down_keeps_to_the_viewers_organisation(org: Org, over: dict[str, Document]) -> None:
    company = signed_in(user_with_role("rep", "auditor", org.company))
    dept_b = signed_in(user_with_role("rep-b", "auditor", org.dept_b))
    url = reverse("web:diagnostic", args=["po_quantities"])
    assert over["po"].number.encode() in company.get(url).content
    page = dept_b.get(url)
    assert page.status_code == 200 and over["po"].number.encode() not in page.content
    so_page = dept_b.get(reverse("web:diagnostic", args=["so_quantities"]))
    assert over["so"].number.encode() in so_page.content
    assert b"What to do next" in so_page.content
    assert dept_b.get(url + "?format=csv").status_code == 200
    assert len(csv_rows(dept_b.get(url + "?format=csv"))) == 1  # the header only


def test_drill_down_exports_neutralise_formulas(org: Org, over: dict[str, Document]) -> None:
    client = signed_in(user_with_role("rep", "auditor", org.company))
    url = reverse("web:diagnostic", args=["po_quantities"])
    rows = xlsx_rows(client.get(url + "?format=xlsx"))
    assert rows[0][:2] == ["Type", "Number"]
    assert rows[1][1] == over["po"].number and rows[1][3] == "'" + EVIL
    assert "over-delivery" in rows[1][-1]
    assert csv_rows(client.get(url + "?format=csv"))[1][3] == "'" + EVIL
    assert client.get(url + "?format=pdf").status_code == 422
    assert client.get(reverse("web:diagnostic", args=["nope"])).status_code == 422


def test_queue_export_all_matching_rows(org: Org, over: dict[str, Document]) -> None:
    client = signed_in(user_with_role("opr", "operator", org.company))
    others = [make_document(PO, org.dept_a) for _ in range(3)]
    url = reverse("web:queue", args=[PO])
    page = client.get(url)
    assert b"format=xlsx" in page.content
    rows = xlsx_rows(client.get(url + "?format=xlsx"))
    assert rows[0][0] == "Number" and len(rows) == 1 + 4
    numbers = {r[0] for r in rows[1:]}
    assert numbers == {over["po"].number, *(d.number for d in others)}
    evil_row = next(r for r in rows[1:] if r[0] == over["po"].number)
    assert evil_row[1] == "'" + EVIL and evil_row[4] == "open" and evil_row[5] == "exception"
    filtered = csv_rows(client.get(url + f"?number={others[0].number}&format=csv"))
    assert [r[0] for r in filtered[1:]] == [others[0].number]


@pytest.fixture
def run_inline(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> Iterator[Callable[..., Any]]:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""

    def run(fn: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    yield run


def test_batch_results_export_and_verification_page(
    org: Org, operator: User, run_inline: Callable[..., Any]
) -> None:
    docs = [ready_document(PO, org.dept_a) for _ in range(2)]
    job = batch_create(
        actor=operator,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in docs],
        reason_code="completed",
        remark=EVIL,
    )
    run_inline(lambda: batch_start(actor=operator, job=job, workers=1))
    client = signed_in(operator)
    page = client.get(reverse("web:batch", args=[job.pk]))
    assert reverse("web:batch_verification", args=[job.pk]).encode() in page.content
    rows = xlsx_rows(client.get(reverse("web:batch_csv", args=[job.pk]) + "?format=xlsx"))
    assert rows[0][0] == "document" and {r[0] for r in rows[1:]} == {d.number for d in docs}
    assert {r[4] for r in rows[1:]} == {"closed"}
    assert len(csv_rows(client.get(reverse("web:batch_csv", args=[job.pk])))) == 3
    # The owner sees the automatic verification; a report viewer may run it again.
    page = client.get(reverse("web:batch_verification", args=[job.pk]))
    assert page.status_code == 200 and b"Verified" in page.content
    assert b"verify-now" not in page.content
    assert client.post(reverse("web:batch_verification", args=[job.pk])).status_code == 403
    viewer = signed_in(user_with_role("rep", "auditor", org.company))
    assert viewer.post(reverse("web:batch_verification", args=[job.pk])).status_code == 302
    assert PostCloseVerification.objects.filter(job=job).count() == 2
    stranger = signed_in(user_with_role("opr2", "operator", org.company))
    assert stranger.get(reverse("web:batch_verification", args=[job.pk])).status_code == 403


def test_audit_export_records_who_exported_what(org: Org, over: dict[str, Document]) -> None:
    auditor = user_with_role("aud-x", "auditor", org.company)
    client = signed_in(auditor)
    url = reverse("web:audit") + f"?document={over['po'].number}"
    assert b"format=csv" in client.get(url).content
    rows = csv_rows(client.get(url + "&format=csv"))
    assert rows[0][0] == "seq" and len(rows) > 1
    assert all(r[6].endswith(over["po"].number) for r in rows[1:])
    exported = AuditEvent.objects.get(action=AuditAction.DATA_EXPORTED)
    assert exported.actor == auditor
    assert exported.data == {"filter": {"document": over["po"].number}, "format": "csv"}
    sheet = xlsx_rows(client.get(url + "&format=xlsx"))
    assert len(sheet) == len(rows)
    operator = signed_in(user_with_role("opr", "operator", org.company))
    assert operator.get(url + "&format=csv").status_code == 403
    assert AuditEvent.objects.filter(action=AuditAction.DATA_EXPORTED).count() == 2


def test_drill_down_page_queries_do_not_grow_with_rows(org: Org) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(user_with_role("rep", "auditor", org.company))
    url = reverse("web:diagnostic", args=["po_quantities"])
    counts = []
    for rows in (2, 12):
        while Document.objects.count() < rows:
            po = make_document(PO, org.dept_a, ((10, 5),))
            post(po, EventKind.RECEIPT, 1, 12)
        with CaptureQueriesContext(connection) as queries:
            page = client.get(url)
        assert page.content.count(b"over-delivery tolerance") == rows
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 20  # the header (menus, badges) included


def test_pages_render_in_chinese(org: Org, over: dict[str, Document]) -> None:
    from closeout.reports.tasks import diagnostics_task

    diagnostics_task.run()
    client = signed_in(user_with_role("rep", "auditor", org.company), language="zh-hans")
    page = client.get(reverse("web:diagnostics")).content.decode()
    assert "数据校验" in page and "系统" in page and "立即运行" in page
    drill = client.get(reverse("web:diagnostic", args=["po_quantities"])).content.decode()
    assert "处理建议" in drill and "入库/出库超过超交容差" in drill
