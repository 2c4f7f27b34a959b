"""The Content Security Policy in a real browser: every main page renders and works with no
violation, and the Chinese close dialog sends ISO dates and insists on a chosen reason."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from closeout.approvals.submit import close_request_submit
from closeout.batches.services import batch_create, batch_preview
from closeout.documents.models import CloseState
from tests.approvals.conftest import make_route, short_po
from tests.factories import PO, org_tree, ready_document, user_with_role
from tests.web.test_browser import browser, login, new_page, pytestmark, shot

__all__ = ["browser", "pytestmark"]

# Collects what the browser refused under the policy, whether or not a console is open.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture
def watched(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page whose CSP violations (console errors and violation events) are collected."""
    page = new_page(browser)
    console: list[str] = []
    page.on(
        "console",
        lambda m: (
            console.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )
    page.add_init_script(WATCH_CSP)
    yield page, console
    page.context.close()


def _violations(page: Any, console: list[str]) -> list[str]:
    return [*console, *page.evaluate("window.__cspViolations || []")]


def test_main_pages_have_no_csp_violation(watched: tuple[Any, list[str]], live_server: Any) -> None:
    page, console = watched
    org = org_tree()
    boss = user_with_role("boss", "admin", org.company)
    boss.is_staff = boss.is_superuser = True
    boss.save()
    make_route("例外 exception", condition="exception")
    document = short_po(org.dept_a)
    asked = close_request_submit(
        actor=boss,
        document=short_po(org.dept_a),
        reason_code="supplier_cannot_deliver",
        remark="supplier stopped trading",
    )
    ready = ready_document(PO, org.dept_a)
    job = batch_create(
        actor=boss,
        action="close",
        doc_type=PO,
        numbers=[ready.number],
        reason_code="completed",
        close_date=timezone.localdate(),
    )
    batch_preview(actor=boss, job=job)
    login(page, live_server.url, "boss")
    base = live_server.url
    pages = {
        "queue": f"{base}/queue/purchase_order/",
        "document": f"{base}/documents/{document.pk}/",
        "close": f"{base}/documents/{document.pk}/close/",
        "inbox": f"{base}/inbox/",
        "request": f"{base}/requests/{asked.pk}/",
        "batch": f"{base}/batches/{job.pk}/",
        "import": f"{base}/imports/",
        "reports": f"{base}/reports/",
        "audit": f"{base}/audit/",
        "notifications": f"{base}/notifications/",
        "diagnostics": f"{base}/diagnostics/",
        "archive": f"{base}/archive/",
        "admin": f"{base}/admin/",
        "admin list": f"{base}/admin/auth/user/",
        "admin form": f"{base}/admin/auth/user/{boss.pk}/change/",
        "api docs": f"{base}/api/docs",
    }
    seen: dict[str, list[str]] = {}
    for name, url in pages.items():
        response = page.goto(url)
        assert response is not None and response.status == 200, name
        assert "content-security-policy" in response.all_headers(), name
        page.wait_for_load_state("networkidle")
        seen[name] = _violations(page, console)
        console.clear()
    assert {name: v for name, v in seen.items() if v} == {}
    # Swagger UI drew the operations under the same policy, and opens one with its example.
    assert page.locator(".opblock").count() > 10
    page.locator(".opblock-summary").first.click()
    page.wait_for_selector(".opblock-body")
    assert _violations(page, console) == []

    # The queue's "select page" box (an inline onclick before) still ticks every document.
    page.goto(f"{base}/queue/purchase_order/")
    page.check("#select-page")
    boxes = page.locator("input[name=numbers]")
    assert boxes.count() >= 2
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.uncheck("#select-page")
    assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
    assert _violations(page, console) == []


def test_chinese_close_dialog_sends_an_iso_date_and_needs_a_reason(
    browser: Any, live_server: Any
) -> None:
    org = org_tree()
    user_with_role("op", "operator", org.company)
    document = ready_document(PO, org.dept_a)
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/close/")
    today = timezone.localdate().isoformat()
    assert page.input_value("#id_close_date") == today
    # No reason is preselected: closing without choosing one is refused, in Chinese.
    assert page.input_value("#id_reason") == ""
    assert page.locator("#id_reason option").first.inner_text() == "请选择…"
    page.click("#close-submit")
    page.wait_for_selector(".field.invalid #id_reason")
    form_text = page.inner_text("#close-form")
    assert "请选择结案原因。" in form_text
    assert "这个字段是必填项" not in form_text  # the date came through
    assert page.input_value("#id_close_date") == today
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
    shot(page, "csp-01-reason-required-zh")
    # Choosing a reason and leaving the date as shown closes the document.
    page.select_option("#id_reason", "completed")
    page.click("#close-submit")
    page.wait_for_selector("#history")
    document.refresh_from_db()
    assert document.close_state == CloseState.CLOSED
    assert document.close_date.isoformat() == today  # type: ignore[union-attr]
