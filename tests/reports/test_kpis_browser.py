"""The reports page in a real browser (fixtures from tests/web/test_browser.py): a supervisor
opens the dashboard in Chinese, filters by type, sees the charts, and switches to English."""

from typing import Any

import pytest

from tests.factories import org_tree
from tests.reports.kpi_data import build_world
from tests.web.test_browser import _missing, browser, login, new_page, shot  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]
if _missing():
    pytestmark.append(pytest.mark.skip(reason=_missing()))


def test_supervisor_filters_the_dashboard_and_switches_to_english(
    browser: Any,  # noqa: F811 (the fixture imported above)
    live_server: Any,
) -> None:
    world = build_world(org_tree())
    world.boss.set_password("x-test-only")
    world.boss.save()
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/reports/")
    assert "结案报表" in page.inner_text("h1")
    page.select_option("#id_doc_type", "purchase_order")
    page.click("#report-filter button[type=submit]")
    page.wait_for_url("**doc_type=purchase_order**")
    cycle = page.locator("#kpi-cycle_by_doc_type")
    assert cycle.locator("svg .chart-bar").count() == 2  # median and p90 of purchase orders
    assert "采购订单" in cycle.locator("table").inner_text()
    assert "销售订单" not in cycle.locator("table").inner_text()
    assert page.locator("#kpi-backlog svg .chart-bar").count() == 5
    shot(page, "kpi-01-dashboard-chinese")
    page.select_option("#lang-select", "en")
    page.click("#lang-go")
    page.wait_for_selector("h1:has-text('Closing reports')")
    page.goto(f"{live_server.url}/reports/?doc_type=purchase_order")
    assert "purchase order" in page.locator("#kpi-cycle_by_doc_type table").inner_text()
    title = page.locator("#kpi-cycle_by_doc_type svg title").first.text_content()
    assert title == "Close cycle time by type (days)"
    shot(page, "kpi-02-dashboard-english")
