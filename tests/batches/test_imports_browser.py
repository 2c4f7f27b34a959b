"""The import page in a real browser: upload a small .xlsx, read the report, execute, and
watch the batch reach 100%."""

from pathlib import Path
from typing import Any

from closeout.documents.models import CloseState, Document
from tests.batches.test_imports import xlsx_bytes
from tests.factories import PO, Org, ready_document
from tests.web import test_browser as web

# The workbench browser tests' fixtures and marks: a transactional database, and a skip (or a
# failure in CI) without Debian's chromium.
browser, people = web.browser, web.people
pytestmark = list(web.pytestmark)


def test_upload_read_the_report_execute_and_see_the_batch_finish(
    browser: Any, live_server: Any, people: dict[str, Any], tmp_path: Path
) -> None:
    org: Org = people["org"]
    documents = [ready_document(PO, org.dept_a) for _ in range(3)]
    source = tmp_path / "close-instructions.xlsx"
    source.write_bytes(
        xlsx_bytes(
            [[PO, d.number, "", "close", "completed", "", ""] for d in documents]
            + [[PO, "NO-SUCH", "", "close", "completed", "", ""]]
        )
    )
    page = web.new_page(browser)
    web.login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/imports/")
    page.set_input_files("#id_file", str(source))
    page.click("#import-upload")
    page.wait_for_selector("#report")
    assert page.inner_text("#count-valid") == "3" and page.inner_text("#count-errors") == "1"
    assert "no purchase_order numbered NO-SUCH" in page.inner_text("#report")
    web.shot(page, "20-import-report")
    page.click("#import-execute")
    web.wait_until_batch_done(page)
    web.shot(page, "21-import-batch-done")
    assert page.locator("#items tbody tr").count() == 3
    closed = Document.objects.filter(
        pk__in=[d.pk for d in documents], close_state=CloseState.CLOSED
    )
    assert closed.count() == 3
