"""The workbench in a real browser: Playwright drives Debian's chromium against the live server.

Never downloads a browser: without /usr/bin/chromium these tests skip (or fail when
CLOSEOUT_REQUIRE_SERVICES=1). Screenshots go to var/screenshots/."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from closeout.approvals.models import CloseRequest, RequestState
from closeout.documents.models import CloseState, Document
from tests.approvals.conftest import make_route, short_po
from tests.factories import PO, Org, org_tree, ready_document, user_with_role

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls
# (setting up data, checking results) are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _missing() -> str:
    if not CHROMIUM.exists():
        return f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need the playwright package (pip install -e '.[dev]')"
    return ""


if _missing():
    if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
        raise RuntimeError(_missing())
    pytestmark.append(pytest.mark.skip(reason=_missing()))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Django keeps connections in a context-local store; once Playwright's event loop runs in
    # this thread, the tests see a fresh connection object that lacks the database snapshot
    # which serialized_rollback restores after each flush. Hand the snapshot over.
    snapshot = getattr(connection, "_test_serialized_contents", None)
    with sync_playwright() as p:
        if snapshot is not None and not hasattr(connection, "_test_serialized_contents"):
            connection._test_serialized_contents = snapshot  # type: ignore[attr-defined]
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def people() -> dict[str, Any]:
    org = org_tree()
    return {
        "org": org,
        "operator": user_with_role("op", "operator", org.company),
        "supervisor": user_with_role("sup", "supervisor", org.company),
        "auditor": user_with_role("aud", "auditor", org.company),
    }


def new_page(browser: Any, locale: str = "en-US", viewport: tuple[int, int] = (1400, 1000)) -> Any:
    context = browser.new_context(
        locale=locale, viewport={"width": viewport[0], "height": viewport[1]}
    )
    context.set_default_timeout(15000)
    page = context.new_page()
    # A button that says what it will do asks first (data-confirm); the person says yes.
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "x-test-only")
    page.click("#login-submit")
    page.wait_for_selector("#who")


def wait_until_batch_done(page: Any) -> None:
    """The progress shows 100% and polls no more (the page reloaded with the results).
    Locator waits, not `wait_for_function`: that evaluates a string in the page, which the
    Content Security Policy forbids (no 'unsafe-eval')."""
    from playwright.sync_api import expect

    expect(page.locator("#percent")).to_have_text("100%", timeout=120000)
    expect(page.locator("#progress[hx-get]")).to_have_count(0, timeout=120000)


def logout(page: Any) -> None:
    page.click("#who button[type=submit]")
    page.wait_for_selector("#login-submit")


def test_operator_filters_the_queue_checks_and_closes_a_line(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    document = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    other = ready_document(PO, org.dept_a)
    from playwright.sync_api import expect

    page = new_page(browser)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/queue/purchase_order/")
    page.fill("#id_number", document.number)
    page.click("#filter-go")
    table = page.locator("#queue-table")
    assert document.number in table.inner_text() and other.number not in table.inner_text()
    shot(page, "01-queue-filtered")
    page.click(f"text={document.number}")
    checklist = page.locator("#checklist").inner_text()
    assert "PASS" in checklist and "FAIL" not in checklist
    assert page.locator("#checklist-verdict").inner_text() == "ready to close"
    shot(page, "02-document")
    page.click("#close-button")
    page.select_option("#id_reason", "completed")
    assert page.locator("#preview tbody tr").count() == 2
    page.check("#id_lines_0")
    # htmx refreshes the preview for the chosen line without leaving the dialog.
    expect(page.locator("#preview tbody tr")).to_have_count(1)
    page.click("#close-submit")
    page.wait_for_selector("#history")
    history = page.locator("#history").inner_text()
    assert "lines closed" in history and "Business completed" in history
    shot(page, "03-line-closed-history")
    states = dict(document.lines.values_list("line_no", "close_state"))
    assert states == {1: CloseState.CLOSED, 2: CloseState.OPEN}


def test_exception_close_goes_to_approval_supervisor_approves_then_reopens(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    make_route("例外 exception", condition="exception")
    document = short_po(org.dept_a)
    page = new_page(browser)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/close/")
    # The page says before any click that this close goes to approval (issue 17 §4).
    assert page.get_attribute("#close-plan", "data-path") == "request"
    assert page.locator("#close-submit").count() == 0
    page.select_option("#id_reason", "supplier_cannot_deliver")
    page.click("#request-submit")
    assert "a remark explaining the exception is required" in page.inner_text("#remark-error")
    shot(page, "04-remark-required")
    page.fill("#id_remark", "the supplier stopped trading")
    shot(page, "05-needs-approval")
    page.click("#request-submit")
    page.wait_for_selector("#request-state")
    request = CloseRequest.objects.get(document=document)
    assert request.state == RequestState.PENDING
    logout(page)

    login(page, live_server.url, "sup")
    page.click("#waiting-badge")
    page.click(f"#waiting a:text('#{request.pk}')")
    assert "FAIL" in page.inner_text("#comparison")
    page.fill("#id_comment", "accepted: supplier is gone")
    shot(page, "06-approval")
    page.click("#approve")
    page.wait_for_selector("#request-state")
    request.refresh_from_db()
    document.refresh_from_db()
    assert request.state == RequestState.EXECUTED and document.close_state == CloseState.CLOSED

    page.goto(f"{live_server.url}/documents/{document.pk}/")
    page.click("#reopen-button")
    page.select_option("#id_reason", "wrong_close")
    page.fill("#id_remark", "closed too early")
    page.click("#reopen-submit")
    page.wait_for_selector("#doc-state")
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
    assert "document reopened" in page.inner_text("#history")
    shot(page, "07-reopened")


def test_batch_close_runs_in_the_background_with_a_progress_bar(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    ready = [ready_document(PO, org.dept_a) for _ in range(200)]
    short_po(org.dept_a)
    page = new_page(browser)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/queue/purchase_order/")
    page.select_option("#id_verdict", "ready")
    page.click("#filter-go")
    page.check("#select-all-matching")
    page.click("#batch-go")
    page.select_option("#id_reason", "completed")
    page.click("#batch-preview")
    page.wait_for_selector("#batch-start")
    assert "200" in page.inner_text("#predicted")
    shot(page, "08-batch-preview")
    page.click("#batch-start")
    wait_until_batch_done(page)
    shot(page, "09-batch-done")
    assert page.locator("#items tbody tr").count() == 200
    closed = Document.objects.filter(pk__in=[d.pk for d in ready], close_state=CloseState.CLOSED)
    assert closed.count() == 200


def test_language_switch_and_a_permission_refusal_in_words(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    document = ready_document(PO, org.dept_a)
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "aud")
    page.goto(f"{live_server.url}/queue/purchase_order/")
    assert "待结案" in page.inner_text("h1")
    shot(page, "10-chinese")
    page.select_option("#lang-select", "en")
    page.click("#lang-go")
    page.wait_for_selector("h1:has-text('To close')")
    shot(page, "11-english")
    page.goto(f"{live_server.url}/documents/{document.pk}/close/")
    page.select_option("#id_reason", "completed")
    page.click("#request-submit")
    error = page.inner_text("#form-error")
    assert "you lack the permission" in error and "close.request" in error
    shot(page, "12-permission-refused")
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
