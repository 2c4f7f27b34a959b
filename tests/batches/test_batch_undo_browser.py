"""Batch undo in a real browser, in Chinese: the supervisor's close batch page offers 撤销此批次,
the undo job is previewed, run, and both pages say which batch undoes which."""

from typing import Any

from closeout.batches.models import BatchAction, BatchJob
from closeout.batches.services import batch_create, batch_start
from closeout.documents.models import CloseState, Document
from tests.factories import PO, Org, ready_document
from tests.web import test_browser as web

browser, people = web.browser, web.people
pytestmark = list(web.pytestmark)


def test_undo_button_previews_runs_and_links_both_batches(
    browser: Any, live_server: Any, people: dict[str, Any], settings: Any
) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    org: Org = people["org"]
    documents = [ready_document(PO, org.dept_a) for _ in range(3)]
    supervisor = people["supervisor"]
    job = batch_create(
        actor=supervisor,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in documents],
        reason_code="completed",
    )
    batch_start(actor=supervisor, job=job, workers=1)
    closed = Document.objects.filter(pk__in=[d.pk for d in documents])
    assert set(closed.values_list("close_state", flat=True)) == {CloseState.CLOSED}

    page = web.new_page(browser, locale="zh-CN")
    web.login(page, live_server.url, "sup")
    page.goto(f"{live_server.url}/batches/{job.pk}/")
    assert "撤销此批次" in page.inner_text("#batch-undo")
    page.click("#batch-undo")
    page.wait_for_selector("#batch-start")
    undo_job = BatchJob.objects.get(undoes=job)
    assert f"撤销原批次 #{job.pk}" in page.inner_text("#undoes")
    assert "将反结案: 3" in page.inner_text("#predicted")
    web.shot(page, "30-undo-preview")
    page.click("#batch-start")
    web.wait_until_batch_done(page)
    web.shot(page, "31-undo-done")
    assert set(closed.values_list("close_state", flat=True)) == {CloseState.OPEN}
    page.goto(f"{live_server.url}/batches/{job.pk}/")
    assert f"已由撤销批次 #{undo_job.pk} 撤销" in page.inner_text("#undone-by")
    assert page.locator("#batch-undo").count() == 0
    web.shot(page, "32-undone-by")
