"""Issue 17 §2, §4, §5, §8 in a real browser at 1366×900, in Chinese first (and the main flow
in English): words instead of codes, which path a close takes before the click, a
confirmation and a message after it, batches that refuse documents, close facts, history
tables, remark counters and menus by permission. Screenshots go to var/screenshots/."""

from typing import Any

import pytest
from django.utils import timezone

from closeout.approvals.models import CloseRequest, RequestState
from closeout.batches.models import BatchJob, ItemState
from closeout.documents.models import CloseState, Document
from tests.approvals.conftest import make_route, short_po
from tests.factories import PO, Org, org_tree, post, ready_document, user_with_role
from tests.web.test_browser import (
    browser,
    login,
    logout,
    new_page,
    pytestmark,
    shot,
    wait_until_batch_done,
)
from tests.web.zh_check import problems, raw_codes

__all__ = ["browser", "pytestmark"]

DESKTOP = (1366, 900)


def chinese_only(page: Any) -> None:
    """The page in the browser shows no English sentence and no raw code."""
    found = problems(page.content(), codes=raw_codes(), data=_data())
    assert not found, (page.url, found[:8])


def _data() -> set[str]:
    from tests.web.test_chinese_walk import data_values

    return data_values() | {"op", "sup", "aud"}


@pytest.fixture
def org() -> Org:
    org = org_tree()
    user_with_role("op", "operator", org.company)
    user_with_role("sup", "supervisor", org.company)
    user_with_role("aud", "auditor", org.company)
    return org


def test_direct_close_in_chinese_says_what_happens_before_and_after(
    browser: Any, live_server: Any, org: Org
) -> None:
    from playwright.sync_api import expect

    document = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    page = new_page(browser, locale="zh-CN", viewport=DESKTOP)
    asked: list[str] = []
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    assert page.get_attribute("#close-button", "data-path") == "direct"
    assert "无需审批" in page.inner_text("#doc-path")
    chinese_only(page)
    shot(page, "zh-01-document-open")
    page.click("#close-button")
    assert page.get_attribute("#close-plan", "data-path") == "direct"
    effect = page.inner_text("#plan-effect")
    # Fully received and invoiced: the close releases nothing, and says so.
    assert "现在结案 2 行" in effect and "未结金额 0.00 CNY" in effect, effect
    expect(page.locator("#id_remark-count")).to_have_text("0 / 2000")
    page.fill("#id_remark", "按合同正常完成")
    expect(page.locator("#id_remark-count")).to_have_text("7 / 2000")
    assert page.get_attribute("#id_remark", "maxlength") == "2000"
    page.select_option("#id_reason", "completed")
    chinese_only(page)
    shot(page, "zh-02-close-dialog")
    page.click("#close-submit")
    page.wait_for_selector(".messages")
    assert asked and "现在结案 2 行" in asked[0], asked
    message = page.inner_text(".messages")
    assert "已结案" in message and document.number in message, message
    facts = page.inner_text("#close-facts")
    assert "正常完成" in facts and "op" in facts and "0.00" in facts, facts
    assert page.locator("#checklist").count() == 0
    page.click("#history details summary")
    assert "变更前" in page.inner_text("#history") and "{'" not in page.content()
    chinese_only(page)
    shot(page, "zh-03-document-closed")
    document.refresh_from_db()
    assert document.close_state == CloseState.CLOSED


def test_a_close_that_needs_approval_says_so_before_the_click_and_approval_gives_feedback(
    browser: Any, live_server: Any, org: Org
) -> None:
    make_route("例外结案审批 exception", condition="exception")
    document = short_po(org.dept_a)
    page = new_page(browser, locale="zh-CN", viewport=DESKTOP)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    assert page.get_attribute("#close-button", "data-path") == "request"
    assert "申请结案" in page.inner_text("#close-button")
    assert "例外结案审批" in page.inner_text("#doc-path")
    page.click("#close-button")
    assert page.locator("#close-submit").count() == 0  # no "close now" that would fail
    assert "必须填写备注" in page.inner_text("#plan-remark")
    page.select_option("#id_reason", "completed")
    page.click("#request-submit")
    assert "必须填写备注" in page.inner_text("#remark-error")
    chinese_only(page)
    shot(page, "zh-04-remark-required")
    page.fill("#id_remark", "供应商停产，短交接受")
    page.click("#request-submit")
    page.wait_for_selector(".messages")
    assert "已提交" in page.inner_text(".messages")
    chinese_only(page)
    shot(page, "zh-05-request-submitted")
    logout(page)

    login(page, live_server.url, "sup")
    request = CloseRequest.objects.get(document=document)
    page.goto(f"{live_server.url}/requests/{request.pk}/")
    comparison = page.inner_text("#comparison")
    assert "未通过" in comparison and "FAIL" not in comparison and "例外" in comparison
    chinese_only(page)
    shot(page, "zh-06-request-to-approve")
    page.click("#approve")
    page.wait_for_selector(".messages")
    assert "已同意并执行" in page.inner_text(".messages")
    request.refresh_from_db()
    assert request.state == RequestState.EXECUTED
    chinese_only(page)


def test_a_batch_with_refused_documents_runs_only_the_closable_ones_after_a_choice(
    browser: Any, live_server: Any, org: Org
) -> None:
    from playwright.sync_api import expect

    ready = [ready_document(PO, org.dept_a) for _ in range(3)]
    blocked = ready_document(PO, org.dept_a)
    post(blocked, "receipt", quantity=1, pending=True)  # a pending event blocks a close
    page = new_page(browser, locale="zh-CN", viewport=DESKTOP)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/queue/purchase_order/")
    for document in [*ready, blocked]:
        page.check(f"input[name=numbers][value='{document.number}']")
    page.click("#batch-go")
    page.select_option("#id_reason", "completed")
    page.click("#batch-preview")
    page.wait_for_selector("#batch-refused")
    assert "1 张单据会被拒绝" in page.inner_text("#batch-refused") or "拒绝" in page.inner_text(
        "#batch-refused"
    )
    assert "将结案: 3" in page.inner_text("#predicted")
    chinese_only(page)
    shot(page, "zh-07-batch-refused")
    # Without the explicit choice the browser does not send the form.
    page.click("#batch-start")
    job = BatchJob.objects.get()
    assert job.state == "previewed"
    page.check("#only-closable")
    page.click("#batch-start")
    expect(page.locator(".messages")).to_contain_text("已开始")
    wait_until_batch_done(page)
    chinese_only(page)
    shot(page, "zh-08-batch-done")
    job.refresh_from_db()
    assert job.failed == 0 and job.skipped == 1 and job.succeeded == 3
    assert job.items.get(document=blocked).state == ItemState.SKIPPED
    assert Document.objects.get(pk=blocked.pk).close_state == CloseState.OPEN


def test_menus_by_permission_and_error_pages_in_chinese(
    browser: Any, live_server: Any, org: Org
) -> None:
    page = new_page(browser, locale="zh-CN", viewport=DESKTOP)
    login(page, live_server.url, "op")
    for entry in ("#menu-reports", "#menu-diagnostics", "#menu-archive", "#menu-audit"):
        assert page.locator(entry).count() == 0, entry
    page.goto(f"{live_server.url}/documents/987654321/")
    assert "页面不存在" in page.inner_text("#error-page")
    chinese_only(page)
    shot(page, "zh-09-not-found")
    logout(page)
    login(page, live_server.url, "aud")
    for entry in ("#menu-reports", "#menu-diagnostics", "#menu-archive", "#menu-audit"):
        assert page.locator(entry).count() == 1, entry
    page.goto(f"{live_server.url}/audit/")
    chinese_only(page)
    shot(page, "zh-10-audit")


def test_main_flow_in_english(browser: Any, live_server: Any, org: Org) -> None:
    document = ready_document(PO, org.dept_a)
    page = new_page(browser, locale="en-US", viewport=DESKTOP)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    assert "No approval is needed" in page.inner_text("#doc-path")
    page.click("#close-button")
    assert "Close 1 line(s) now?" in page.inner_text("#plan-effect")
    page.select_option("#id_reason", "completed")
    page.fill("#id_close_date", timezone.localdate().isoformat())
    page.click("#close-submit")
    page.wait_for_selector(".messages")
    assert "is closed" in page.inner_text(".messages")
    assert "Business completed" in page.inner_text("#close-facts")
    shot(page, "en-01-document-closed")
