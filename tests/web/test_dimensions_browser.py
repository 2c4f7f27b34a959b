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


def test_close_a_po_line_for_receiving_and_reopen_it_in_chinese(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    """A supervisor closes line 1 for receiving from the document page (reason required, blank
    first; confirmation; success message), then reopens it; the commitments follow."""
    org: Org = people["org"]
    document = make_document(PO, org.dept_a, ((10, 5), (4, 2)), item=an_item("DIM-FORM"))
    post(document, EventKind.RECEIPT, 1, 6)
    line = document.lines.get(line_no=1)
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "sup")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    page.click("#dimension-close-button")
    assert page.locator("#id_reason option").first.get_attribute("value") == ""
    assert page.locator("#id_dimension option").first.get_attribute("value") == ""
    assert "收货" in page.locator("#id_dimension").inner_text()
    page.click("#dimension-submit")  # nothing chosen: each field says what is missing
    assert "请选择关闭维度" in page.locator("#dimension-error").inner_text()
    assert "请选择原因" in page.locator("#reason-error").inner_text()
    page.select_option("#id_dimension", "receiving")
    page.check("#dimension-form input[name=lines][value='1']")
    page.select_option("#id_reason", "short_delivery_accepted")
    page.fill("#id_remark", "供应商停产，剩余数量不再交货")
    shot(page, "dims-03-close-for-receiving-form-zh")
    page.click("#dimension-submit")
    page.wait_for_url(f"**/documents/{document.pk}/")
    message = page.locator(".messages").inner_text()
    assert document.number in message and "已收货关闭" in message and "4" in message
    first = page.locator("#lines tbody tr").nth(0).locator("td.dimensions").inner_text()
    assert "收货关闭" in first
    line.refresh_from_db()
    assert line.close_state == "open"
    shot(page, "dims-04-closed-for-receiving-zh")

    page.click("#dimension-reopen-button")
    page.select_option("#id_dimension", "receiving")
    page.check("#dimension-form input[name=lines][value='1']")
    page.select_option("#id_reason", "late_delivery")
    page.click("#dimension-submit")
    page.wait_for_url(f"**/documents/{document.pk}/")
    message = page.locator(".messages").inner_text()
    assert "重开" in message and "在途" in message
    first = page.locator("#lines tbody tr").nth(0).locator("td.dimensions").inner_text()
    assert "收货未关闭" in first
    text = page.locator("main").inner_text()
    for english in ("receiving", "short_delivery_accepted", "late_delivery"):
        assert english not in text, english
    shot(page, "dims-05-reopened-for-receiving-zh")


def test_the_dimension_forms_are_offered_only_with_the_right(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    document = make_document(PO, org.dept_a, ((10, 5),), item=an_item("DIM-FORM"))
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "aud")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    assert page.locator("#dimension-close-button").count() == 0
    response = page.goto(f"{live_server.url}/documents/{document.pk}/dimensions/close/")
    assert response is not None and response.status == 403
