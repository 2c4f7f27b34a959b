"""The close dialog in a real browser: choosing a reason re-renders the risk warnings (htmx)."""

from typing import Any

import pytest

from closeout.documents.models import EventKind
from tests.factories import PO, Org, make_document, post
from tests.web.test_browser import (  # noqa: F401 (fixtures browser, people; pytestmark: database and skip marks)
    browser,
    login,
    new_page,
    people,
    pytestmark,
    shot,
)


@pytest.mark.usefixtures("browser", "people")
def test_choosing_a_reason_shows_the_warning_it_contradicts(
    live_server: Any, request: pytest.FixtureRequest
) -> None:
    org: Org = request.getfixturevalue("people")["org"]
    document = make_document(PO, org.dept_a, ((100, 10),))
    post(document, EventKind.RECEIPT, 1, 40, days_ago=3)
    page = new_page(request.getfixturevalue("browser"))
    login(page, live_server.url, "op")
    page.goto(f"{live_server.url}/documents/{document.pk}/close/")
    assert page.locator('[data-risk="reason_recent_events"]').count() == 0
    page.select_option("#id_reason", "supplier_cannot_deliver")
    warning = page.wait_for_selector('.risk[data-risk="reason_recent_events"]')
    assert warning is not None
    text = warning.inner_text()
    assert "supplier cannot deliver, but 1 receipt event(s)" in text
    assert "events = 1" in text and "quantity = 40" in text
    shot(page, "risk-01-reason-contradicted")
    page.select_option("#id_reason", "data_correction")
    page.wait_for_selector('.risk[data-risk="reason_recent_events"]', state="detached")
