"""The document page shows each line's state per close dimension (关闭维度), in Chinese first:
a real browser against the live server."""

from typing import Any

from closeout.closing.dimension_services import line_dimension_close
from closeout.documents.models import EventKind
from tests.factories import PO, Org, an_item, make_document, post
from tests.web import test_browser
from tests.web.test_browser import browser, login, new_page, people, shot

pytestmark = test_browser.pytestmark
__all__ = ["browser", "people"]


def test_document_page_shows_a_state_per_dimension_in_chinese(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    document = make_document(PO, org.dept_a, ((10, 5), (4, 2)), item=an_item("DIM-WEB"))
    post(document, EventKind.RECEIPT, 1, 6)
    line_dimension_close(
        actor=people["supervisor"],
        document=document,
        dimension="receiving",
        reason_code="short_delivery_accepted",
        remark="供应商停产",
        line_nos=[1],
    )
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    table = page.locator("#lines")
    head = table.locator("thead").inner_text()
    assert "关闭维度" in head
    first = table.locator("tbody tr").nth(0).locator("td.dimensions").inner_text()
    second = table.locator("tbody tr").nth(1).locator("td.dimensions").inner_text()
    assert "收货关闭" in first and "开票未关闭" in first and "付款未关闭" in first
    assert "收货未关闭" in second
    text = table.inner_text()
    for english in ("receiving", "invoicing", "payment", "open", "closed"):
        assert english not in text, english
    assert "关闭维度" in page.locator("#history").inner_text()
    shot(page, "dims-01-document-dimensions-zh")


def test_queue_filters_closed_for_receiving_invoicing_open(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    closed = make_document(PO, org.dept_a, ((10, 5),), item=an_item("DIM-WEB"))
    post(closed, EventKind.RECEIPT, 1, 6)
    line_dimension_close(
        actor=people["supervisor"],
        document=closed,
        dimension="receiving",
        reason_code="short_delivery_accepted",
        remark="供应商停产",
    )
    other = make_document(PO, org.dept_a, ((10, 5),), item=an_item("DIM-WEB"))
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/queue/purchase_order/")
    page.select_option("#id_closed_for", "receiving")
    page.select_option("#id_open_for", "invoicing")
    assert "收货" in page.locator("label[for=id_closed_for]").locator("..").inner_text()
    page.click("#filter-go")
    table = page.locator("#queue-table").inner_text()
    assert closed.number in table and other.number not in table
    shot(page, "dims-02-queue-closed-for-receiving")
