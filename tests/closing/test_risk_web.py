"""The risk warnings on the pages: the close dialog (re-rendered when the reason changes), the
document page, the CLI and the API; and their query count does not grow with the history."""

from collections.abc import Callable
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from closeout.closing.selectors import close_checklist_with_risks
from closeout.core.models import Item, Partner
from closeout.documents.models import Document
from tests.closing.test_risk import (  # noqa: F401 (fixtures)
    NOW,
    SetClock,
    bolt,
    clock,
    history,
    operator,
    order,
    supplier,
)
from tests.factories import Org


def client_for(user: User, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_close_dialog_shows_the_reason_warning_with_its_numbers(
    clock: SetClock, org: Org, operator: User
) -> None:
    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    url = reverse("web:close", args=[document.pk])
    client = client_for(operator)
    page = client.get(url).content.decode()
    assert 'id="risks"' in page and "supplier cannot deliver" not in page
    # The reason's change posts the form as a preview (htmx); the same as the preview button.
    page = client.post(
        url,
        {
            "reason": "supplier_cannot_deliver",
            "close_date": NOW.date().isoformat(),
            "submit_as": "preview",
        },
    ).content.decode()
    assert "The reason says the supplier cannot deliver, but 1 receipt event(s)" in page
    assert "quantity 40" in page and "the latest 3 day(s) ago" in page
    assert "events = 1" in page and "days = 14" in page  # measured and reference
    assert 'data-risk="reason_recent_events"' in page
    # Advisory only: the rule verdict is the one without risks.
    assert 'id="checklist-verdict">exception<' in page
    chinese = client_for(operator, "zh-hans").post(
        url, {"reason": "supplier_cannot_deliver", "submit_as": "preview"}
    )
    assert "结案原因为“供应商无法交货”，但近 14 天仍有 1 笔业务" in chinese.content.decode()


def test_document_page_shows_history_warnings(
    clock: SetClock, org: Org, operator: User, supplier: Partner
) -> None:
    history(clock, org, operator, supplier, closes=9)
    big = order(org, supplier, planned=1000, delivered=100)
    page = client_for(operator).get(reverse("web:document", args=[big.pk])).content.decode()
    assert 'data-risk="partner_released_value"' in page
    assert "This close&#x27;s released open value 9,000.00 is far above partner SUP-RISK" in page


def _checklist_queries(document: Document, operator: User) -> int:
    document = Document.objects.select_related("partner", "org_unit").get(pk=document.pk)
    with CaptureQueriesContext(connection) as queries:
        close_checklist_with_risks(document, actor=operator, reason_code="completed")
    return len(queries)


def test_queries_do_not_grow_with_the_history(
    clock: SetClock,
    org: Org,
    operator: User,
    supplier: Partner,
    bolt: Item,
    django_assert_max_num_queries: Callable[..., object],
) -> None:
    history(clock, org, operator, supplier, closes=2, item=bolt)
    document = order(org, supplier, planned=100, delivered=40, item=bolt)
    few = _checklist_queries(document, operator)
    history(clock, org, operator, supplier, closes=10, item=bolt)
    assert _checklist_queries(document, operator) == few
    client = client_for(operator)
    with django_assert_max_num_queries(40):  # type: ignore[operator]
        response = client.post(
            reverse("web:close", args=[document.pk]),
            {"reason": "completed", "submit_as": "preview"},
        )
    assert 'data-risk="reason_open_remainder"' in response.content.decode()


def test_cli_check_prints_the_risk_warnings(clock: SetClock, org: Org, operator: User) -> None:
    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    out = StringIO()
    call_command(
        "check",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--as",
        operator.get_username(),
        "--lang",
        "en",
        stdout=out,
    )
    text = out.getvalue()
    assert "risk warnings (advisory, not part of the verdict):" in text
    assert "RISK reason_recent_events (lines 1)" in text
    assert "measured: events" in text and "threshold: events in the last 14 days = 0" in text
    assert "thin_history actor_close_rate" in text
    assert "verdict: exception" in text


def test_api_checklist_has_the_risks(clock: SetClock, org: Org, operator: User) -> None:
    from closeout.api.services import api_token_create

    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    secret = api_token_create(actor=None, user=operator, name="risk test").raw
    response = Client().get(
        f"/api/documents/purchase_order/{document.number}/checklist",
        {"reason": "supplier_cannot_deliver"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200, response.content
    risks = response.json()["risks"]
    flagged = [r for r in risks if r["status"] == "flagged"]
    assert [r["code"] for r in flagged] == ["reason_recent_events"]
    assert flagged[0]["measured"] == {"events": 1, "quantity": "40.0000"}
    auto = Client().get(
        f"/api/documents/purchase_order/{document.number}/checklist",
        {"for_auto": "true"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert auto.json()["risks"] == []
