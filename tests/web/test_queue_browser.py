# ruff: noqa: F811 (the fixtures browser and people are imported from test_browser)
"""The work queue, keys and phones in a real browser (issue 17, items 6, 7 and 12), in Chinese
first: sorting with an arrow, the column chooser, keyboard shortcuts, pages that fit a phone,
and axe-core finding no serious or critical accessibility problem on the main pages."""

from pathlib import Path
from typing import Any

import pytest

from closeout.approvals.models import RequestState
from tests.approvals.conftest import make_route, short_po, submit_close
from tests.factories import PO, Org, make_document, ready_document
from tests.web.test_browser import (  # noqa: F401 (fixtures browser, people; pytestmark)
    browser,
    login,
    people,
    pytestmark,
    shot,
)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _page(browser: Any, viewport: dict[str, int], locale: str = "zh-CN", **options: Any) -> Any:
    context = browser.new_context(locale=locale, viewport=viewport, **options)
    context.set_default_timeout(15000)
    return context.new_page()


def test_sorting_columns_and_keys_on_the_queue_in_chinese(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    org: Org = people["org"]
    for n in (3, 1, 2):
        make_document(PO, org.dept_a, number=f"Q-{n}", lines=((10, 1000 * n),))
    page = _page(browser, DESKTOP)
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/queue/purchase_order/")
    assert "待结案" in page.locator("h1").inner_text()
    assert "共 3 张单据" in page.locator("#queue-total").inner_text()

    page.click("#sort-number")
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("▲")
    numbers = page.locator("#queue-table .docno").all_inner_texts()
    assert numbers == ["Q-1", "Q-2", "Q-3"]
    page.click("#sort-number")
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("▼")
    assert page.url.count("sort=") == 1
    assert page.locator("td[data-column=amount]").first.inner_text() == "30,000.00"

    # The column chooser hides a column, and the page remembers it.
    page.click("#column-chooser summary")
    page.uncheck("#column-chooser input[data-column=partner]")
    expect(page.locator("th[data-column=partner]")).to_be_hidden()
    page.reload()
    expect(page.locator("th[data-column=partner]")).to_be_hidden()

    # Keys: j moves to a row, x ticks it, / goes to the number search, ? shows the keys.
    page.locator("h1").click()
    page.keyboard.press("j")
    expect(page.locator("tr.kb-current")).to_have_count(1)
    page.keyboard.press("x")
    expect(page.locator("tr.kb-current input[name=numbers]")).to_be_checked()
    page.keyboard.press("?")
    expect(page.locator("#kb-help")).to_be_visible()
    assert "键盘快捷键" in page.locator("#kb-help").inner_text()
    shot(page, "queue-keys-zh")
    page.keyboard.press("Escape")
    expect(page.locator("#kb-help")).to_be_hidden()
    page.keyboard.press("/")
    expect(page.locator("#id_number")).to_be_focused()
    page.keyboard.type("Q-2")
    page.keyboard.press("Enter")
    expect(page.locator("#queue-table .docno")).to_have_text(["Q-2"])


def test_an_approver_approves_from_the_inbox_by_keyboard(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    org: Org = people["org"]
    make_route("例外 exception", condition="exception")
    request = submit_close(people["operator"], short_po(org.dept_a))
    page = _page(browser, DESKTOP)
    login(page, live_server.url, "sup")
    page.goto(f"{live_server.url}/inbox/")
    page.locator("h1").click()
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(page.locator(f"#req-{request.pk}")).to_be_checked()
    expect(page.locator("#decide-go")).to_be_focused()
    page.fill("#id_comment", "同意")
    page.click("#decide-go")
    expect(page.locator("#decide-results")).to_be_visible()
    request.refresh_from_db()
    assert request.state != RequestState.PENDING


# Elements that reach past the right edge of the screen, outside the boxes that scroll by
# design (on a phone a wide table scrolls inside itself, or inside `.scroll`).
OVERFLOW = """() => [...document.querySelectorAll('body *')]
  .filter((e) => !(e.parentElement && e.parentElement.closest('.scroll, table.grid'))
      && e.getClientRects().length
      && e.getBoundingClientRect().right > window.innerWidth + 1)
  .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + e.className)"""


def _overflowing(page: Any) -> list[str]:
    wide = page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
    return list(page.evaluate(OVERFLOW)) + (["the page itself"] if wide else [])


def test_phone_pages_do_not_scroll_sideways(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    make_route("例外 exception", condition="exception")
    document = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    request = submit_close(people["operator"], short_po(org.dept_a))
    page = _page(browser, PHONE)
    login(page, live_server.url, "sup")
    for name, path in (
        ("queue", "/queue/purchase_order/"),
        ("document", f"/documents/{document.pk}/"),
        ("inbox", "/inbox/"),
        ("request", f"/requests/{request.pk}/"),
    ):
        page.goto(f"{live_server.url}{path}")
        shot(page, f"phone-{name}-zh")
        assert not _overflowing(page), f"{name} is wider than a phone: {_overflowing(page)}"


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is installed by `make install` (npm)")
def test_no_serious_accessibility_problem_on_the_main_pages(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    make_route("例外 exception", condition="exception")
    document = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    request = submit_close(people["operator"], short_po(org.dept_a))
    # Only the checker is let past the Content Security Policy; the pages are as served.
    page = _page(browser, DESKTOP, bypass_csp=True)
    page.goto(f"{live_server.url}/login/")
    problems = _axe(page, "login")
    login(page, live_server.url, "sup")
    for name, path in (
        ("queue", "/queue/purchase_order/"),
        ("document", f"/documents/{document.pk}/"),
        ("close", f"/documents/{document.pk}/close/"),
        ("inbox", "/inbox/"),
        ("request", f"/requests/{request.pk}/"),
        ("audit", "/audit/"),
    ):
        page.goto(f"{live_server.url}{path}")
        problems += _axe(page, name)
    assert not problems, "\n".join(problems)
    # The checker does find problems: an image without a text alternative is critical.
    page.evaluate("() => document.body.insertAdjacentHTML('beforeend', '<img src=x.png>')")
    assert any("image-alt" in p for p in _axe(page, "broken"))


def _axe(page: Any, name: str) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})"
    )
    return [
        f"{name}: {v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
