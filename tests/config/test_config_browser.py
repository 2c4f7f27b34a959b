"""Hold/release, the configuration pages and the policy what-if in a real browser (Debian's
chromium), in Chinese first (the hold flow also in English), at 1366×900. Screenshots go to
var/screenshots/."""

from typing import Any

import pytest

from closeout.approvals.models import AccountingPeriod, ApprovalRoute
from closeout.closing.models import ClosePolicy, ReasonCode
from closeout.documents.models import CloseState, Document, EventKind
from tests.factories import PO, Org, make_document, org_tree, post, ready_document, user_with_role
from tests.web.test_browser import CHROMIUM, browser, login, pytestmark, shot  # noqa: F401

__all__ = ["browser", "pytestmark"]


def page_at(browser: Any, locale: str) -> Any:
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(20000)
    return context.new_page()


@pytest.fixture
def people() -> dict[str, Any]:
    org = org_tree()
    return {
        "org": org,
        "operator": user_with_role("op", "operator", org.company),
        "admin": user_with_role("cfg", "admin", org.company),
        "auditor": user_with_role("aud", "auditor", org.company),
    }


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_hold_lines_then_release(
    browser: Any, live_server: Any, people: dict[str, Any], locale: str
) -> None:
    from playwright.sync_api import expect

    document = ready_document(PO, people["org"].dept_a, ((10, 5), (4, 2)))
    page = page_at(browser, locale)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    page.click("#hold-button")
    page.click("#hold-submit")
    expect(page.locator("#reason-error")).to_be_visible()
    page.check("#id_lines_1")
    page.fill("#id_reason", "供应商质量争议" if locale == "zh-CN" else "supplier dispute")
    page.click("#hold-submit")
    expect(page.locator("#hold-info")).to_be_visible()
    info = page.locator("#hold-info").inner_text()
    assert "op" in info and "#2" in info
    assert ("冻结" in info) if locale == "zh-CN" else ("held" in info)
    post(document, EventKind.RECEIPT, 2, 1, days_ago=0)
    page.reload()
    expect(page.locator("#hold-quarantined")).to_have_text("1")
    shot(page, f"hold-document-{locale}")
    page.click("#release-button")
    shot(page, f"release-dialog-{locale}")
    page.click("#hold-submit")
    expect(page.locator("#hold-info")).to_have_count(0)
    assert document.lines.get(line_no=2).close_state == CloseState.OPEN
    # An auditor sees no hold or release button.
    document_hold = Document.objects.get(pk=document.pk)
    assert document_hold.close_state == CloseState.OPEN


def test_policy_whatif_then_save_in_chinese(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    org: Org = people["org"]
    short = make_document(PO, org.dept_a, [(100, 3)])
    post(short, EventKind.RECEIPT, 1, 95)
    post(short, EventKind.INVOICE, 1, 95, 285)
    post(short, EventKind.PAYMENT, 1, 0, 285)
    page = page_at(browser, "zh-CN")
    login(page, live_server.url, "cfg")
    page.click("#nav-config")
    page.click("text=结案策略")
    page.select_option("#id_doc_type", "purchase_order")
    page.click("#policy-open")
    page.fill("#id_under_qty_pct", "10")
    page.click("#policy-whatif")
    expect(page.locator("#whatif")).to_be_visible()
    assert page.locator("#whatif-ready td").nth(3).inner_text() == "+1"
    assert short.number in page.locator("#whatif-sample").inner_text()
    assert "例外 → 通过" in page.locator("#whatif-sample").inner_text()
    shot(page, "policy-whatif-zh")
    assert ClosePolicy.objects.get(doc_type=PO, org_unit=None).under_qty_pct != 10
    page.click("#policy-save")
    expect(page.locator(".messages")).to_contain_text("已保存")
    assert ClosePolicy.objects.get(doc_type=PO, org_unit=None).under_qty_pct == 10


def test_each_configuration_page_in_chinese(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    org: Org = people["org"]
    user_with_role("newbie", None)
    page = page_at(browser, "zh-CN")
    login(page, live_server.url, "cfg")
    base = live_server.url
    # Reason codes
    page.goto(f"{base}/config/reasons/")
    page.fill("#id_code", "price_dispute")
    page.fill("#id_label_zh", "价格争议")
    page.fill("#id_label_en", "Price dispute")
    page.click("#reason-save")
    expect(page.locator(".messages")).to_contain_text("结案原因已保存")
    assert ReasonCode.objects.filter(code="price_dispute").exists()
    shot(page, "config-reasons-zh")
    # Accounting periods: add, close
    page.goto(f"{base}/config/periods/")
    page.fill("#id_name", "2025-01")
    page.fill("#id_start", "2025-01-01")
    page.fill("#id_end", "2025-01-31")
    page.click("#period-save")
    period = AccountingPeriod.objects.get(name="2025-01")
    page.click(f"#close-{period.pk}")
    expect(page.locator(".messages")).to_contain_text("已关账")
    shot(page, "config-periods-zh")
    # Approval route with two steps
    page.goto(f"{base}/config/routes/new/")
    page.fill("#id_name", "采购例外审批")
    page.select_option("#id_condition", "exception")
    page.select_option("#id_org_unit", org.dept_a.code)
    page.select_option("#id_step1_role", "supervisor")
    page.fill("#id_step1_name", "主管")
    page.select_option("#id_step2_role", "finance")
    page.fill("#id_step2_name", "财务")
    page.click("#route-save")
    expect(page.locator("#routes")).to_contain_text("采购例外审批")
    assert ApprovalRoute.objects.get(name="采购例外审批").steps.count() == 2
    shot(page, "config-routes-zh")
    # Grants: a temporary grant, then granting oneself is refused
    page.goto(f"{base}/config/grants/")
    page.fill("#id_username", "newbie")
    page.select_option("#id_role", "auditor")
    page.select_option("#id_org_unit", org.dept_a.code)
    page.fill("#id_valid_until", "2999-12-31")
    page.fill("#id_reason", "年审")
    page.click("#grant-save")
    expect(page.locator("#grants")).to_contain_text("newbie")
    page.fill("#id_username", "cfg")
    page.click("#grant-save")
    expect(page.locator("#form-error")).to_be_visible()
    shot(page, "config-grants-zh")
    # Webhooks: the form is there and refuses a bad address next to the field
    page.goto(f"{base}/config/webhooks/")
    page.fill("#id_name", "erp")
    page.fill("#id_url", "not a url")
    page.click("#webhook-save")
    expect(page.locator(".field.invalid")).to_have_count(1)
    shot(page, "config-webhooks-zh")
