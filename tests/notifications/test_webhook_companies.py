"""Webhook endpoints per company: an endpoint of company A receives only the events of A's
documents, a group endpoint every company's (and only a manager of every company may add
one); a manager of one company sees and switches off only its endpoints, in the API and on
the page."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.api.services import api_token_create
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.errors import NotFound, PermissionDenied
from closeout.notifications.models import WebhookDelivery, WebhookEndpoint
from closeout.notifications.selectors import webhook_deliveries_visible, webhook_endpoint_list
from closeout.notifications.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_deactivate,
)
from closeout.notifications.webhooks import webhook_emit
from tests.api.conftest import Api
from tests.approvals.conftest import make_route, submit_close
from tests.companies.conftest import two_companies
from tests.factories import PO, make_document, user_with_role

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.invalid/"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000


@pytest.fixture
def world() -> dict[str, Any]:
    cn, us, cn_dept, us_dept = two_companies()
    both = user_with_role("both", "admin", cn.unit)
    grant_create(actor=None, user=both, role=Role.objects.get(code="admin"), org_unit=us.unit)
    return {
        "cn": cn,
        "us": us,
        "cn_dept": cn_dept,
        "us_dept": us_dept,
        "both": both,
        "cn_only": user_with_role("cn-only", "admin", cn.unit),
        "group": webhook_endpoint_create(actor=both, name="group", url=HOOK + "g", events=[]),
        "hook_cn": webhook_endpoint_create(
            actor=both, name="cn", url=HOOK + "cn", events=[], company=cn
        ),
        "hook_us": webhook_endpoint_create(
            actor=both, name="us", url=HOOK + "us", events=[], company=us
        ),
    }


def _receivers(event_company: int | None) -> set[str]:
    WebhookDelivery.objects.all().delete()
    webhook_emit(event="request.submitted", payload={"x": 1}, company_id=event_company)
    return set(WebhookDelivery.objects.values_list("endpoint__name", flat=True))


def test_an_endpoint_of_a_company_receives_only_its_events(world: dict[str, Any]) -> None:
    assert _receivers(world["cn"].pk) == {"group", "cn"}
    assert _receivers(world["us"].pk) == {"group", "us"}
    assert _receivers(None) == {"group"}


def test_a_request_on_a_document_of_a_reaches_a_and_the_group_only(
    world: dict[str, Any],
) -> None:
    make_route("cn closes", org_unit=world["cn"].unit)
    document = make_document(PO, world["cn_dept"], number="PO-C1")
    WebhookDelivery.objects.all().delete()
    submit_close(world["both"], document)
    names = set(WebhookDelivery.objects.values_list("endpoint__name", flat=True))
    assert names == {"group", "cn"}


def test_a_one_company_manager_sees_and_changes_only_its_endpoints(world: dict[str, Any]) -> None:
    cn_only = world["cn_only"]
    assert [e.name for e in webhook_endpoint_list(actor=cn_only)] == ["cn"]
    with pytest.raises(PermissionDenied):
        webhook_endpoint_create(actor=cn_only, name="g2", url=HOOK + "g2", events=[])
    with pytest.raises(PermissionDenied):
        webhook_endpoint_create(
            actor=cn_only, name="u2", url=HOOK + "u2", events=[], company=world["us"]
        )
    with pytest.raises(NotFound):
        webhook_endpoint_deactivate(actor=cn_only, endpoint_id=world["hook_us"].pk)
    assert WebhookEndpoint.objects.get(name="us").active
    mine = webhook_endpoint_create(
        actor=cn_only, name="cn2", url=HOOK + "cn2", events=[], company=world["cn"]
    )
    event = AuditEvent.objects.filter(action=AuditAction.WEBHOOK_CHANGED).latest("pk")
    assert event.object_repr == "cn2" and event.data["company"] == "CN01"
    assert not webhook_endpoint_deactivate(actor=cn_only, endpoint_id=mine.pk).active


def test_the_api_lists_and_creates_within_the_caller_companies(world: dict[str, Any]) -> None:
    api = Api(Client(), api_token_create(actor=None, user=world["cn_only"], name="t").raw)
    listed = api.get("/api/webhooks")
    assert listed.status_code == 200
    assert [(e["name"], e["company"]) for e in listed.json()] == [("cn", "CN01")]
    refused = api.post("/api/webhooks", {"name": "x", "url": HOOK + "x", "company": "US01"})
    assert refused.status_code == 403
    refused = api.post("/api/webhooks", {"name": "x", "url": HOOK + "x"})
    assert refused.status_code == 403
    made = api.post("/api/webhooks", {"name": "x", "url": HOOK + "x", "company": "CN01"})
    assert made.status_code == 201 and made.json()["company"] == "CN01"
    hidden = api.post(f"/api/webhooks/{world['hook_us'].pk}/deactivate")
    assert hidden.status_code == 404
    wide = Api(Client(), api_token_create(actor=None, user=world["both"], name="t").raw)
    assert {e["name"] for e in wide.get("/api/webhooks").json()} == {"group", "cn", "us", "x"}


def test_the_page_offers_only_the_user_companies(world: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world["cn_only"])
    answer = client.get("/config/webhooks/")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert HOOK + "cn" in page and HOOK + "us" not in page and HOOK + "g" not in page
    assert [c for c, _ in answer.context["form"].fields["company"].choices] == ["CN01"]
    refused = client.post(
        "/config/webhooks/",
        {"op": "create", "company": "US01", "name": "p", "url": HOOK + "p", "events": ""},
    )
    assert refused.status_code == 400 and not WebhookEndpoint.objects.filter(name="p").exists()
    made = client.post(
        "/config/webhooks/",
        {"op": "create", "company": "CN01", "name": "p", "url": HOOK + "p", "events": ""},
    )
    assert made.status_code == 302
    assert WebhookEndpoint.objects.get(name="p").company == world["cn"]


# --- the delivery log per company -----------------------------------------------------------


def _logged(world: dict[str, Any], per_endpoint: int = 3) -> None:
    """`per_endpoint` deliveries of each endpoint, their event naming the endpoint."""
    for key in ("group", "hook_cn", "hook_us"):
        endpoint = world[key]
        for i in range(per_endpoint):
            WebhookDelivery.objects.create(
                endpoint=endpoint, event=f"{endpoint.name}.event{i}", payload={}, attempts=i
            )


def _events(rows: Any) -> set[str]:
    return {d.event.split(".")[0] for d in rows}


def test_a_one_company_manager_sees_only_its_deliveries(world: dict[str, Any]) -> None:
    _logged(world)
    cn_only = world["cn_only"]
    assert _events(webhook_deliveries_visible(actor=cn_only)) == {"cn"}
    assert webhook_deliveries_visible(actor=cn_only).count() == 3
    assert _events(webhook_deliveries_visible(actor=world["both"])) == {"group", "cn", "us"}
    for other in ("hook_us", "group"):
        with pytest.raises(NotFound):
            webhook_deliveries_visible(actor=cn_only, endpoint_id=world[other].pk)
    dept_admin = user_with_role("cn-dept-admin", "admin", world["cn_dept"])
    with pytest.raises(PermissionDenied):
        webhook_deliveries_visible(actor=dept_admin)


def test_the_api_pages_the_deliveries_of_a_visible_endpoint_only(world: dict[str, Any]) -> None:
    _logged(world)
    api = Api(Client(), api_token_create(actor=None, user=world["cn_only"], name="t").raw)
    hidden = api.get(f"/api/webhooks/{world['hook_us'].pk}/deliveries")
    assert hidden.status_code == 404
    assert api.get(f"/api/webhooks/{world['group'].pk}/deliveries").status_code == 404
    seen: list[str] = []
    cursor = ""
    for _page in range(3):
        answer = api.get(f"/api/webhooks/{world['hook_cn'].pk}/deliveries?limit=2&cursor={cursor}")
        assert answer.status_code == 200
        body = answer.json()
        seen += [d["event"] for d in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["cn.event2", "cn.event1", "cn.event0"]  # newest first, each once
    assert api.get(f"/api/webhooks/{world['hook_cn'].pk}/deliveries?limit=0").status_code == 422


def test_the_page_shows_only_the_deliveries_of_the_user_companies(world: dict[str, Any]) -> None:
    _logged(world, per_endpoint=25)  # more than a page
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(world["cn_only"])
    answer = client.get("/config/webhooks/")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "最近的投递" in page and "cn.event24" in page
    assert "us.event" not in page and "group.event" not in page
    first = answer.context["deliveries"]
    assert len(first.rows) == 20 and first.next_cursor and not first.prev_cursor
    following = client.get(f"/config/webhooks/?after={first.next_cursor}")
    rows = following.context["deliveries"].rows
    assert [d.event for d in rows] == [f"cn.event{i}" for i in range(4, -1, -1)]
    assert client.get(f"/config/webhooks/?endpoint={world['hook_us'].pk}").status_code == 404
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(world["both"])
    page = english.get(f"/config/webhooks/?endpoint={world['hook_us'].pk}").content.decode()
    assert "Recent deliveries" in page
    assert "us.event24" in page
    assert "cn.event" not in page


def test_the_cli_log_filters_by_company(world: dict[str, Any]) -> None:
    _logged(world)
    out = StringIO()
    call_command("webhooks", "log", "--company", "CN01", stdout=out)
    lines = out.getvalue().splitlines()[2:]
    assert len(lines) == 3 and all(" cn.event" in line for line in lines)
    with pytest.raises(CommandError, match="no company with code 'XX'"):
        call_command("webhooks", "log", "--company", "XX", stdout=StringIO())
