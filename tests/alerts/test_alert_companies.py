"""Alert rules per company: a company's rule watches only its documents and replaces the
group's rule of the same alert there; its digests reach only people of that company; a user of
one company neither sees nor edits another company's rules."""

from typing import Any

import pytest
from django.test import Client

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.alerts.models import AlertCode, AlertRule
from closeout.alerts.selectors import alert_items
from closeout.alerts.services import alert_rule_save, alerts_run
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.errors import PermissionDenied
from closeout.notifications.models import Notification
from tests.companies.conftest import two_companies
from tests.factories import PO, make_document, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""


@pytest.fixture
def world() -> dict[str, Any]:
    cn, us, cn_dept, us_dept = two_companies()
    both = user_with_role("both", "admin", cn.unit)
    grant_create(actor=None, user=both, role=Role.objects.get(code="admin"), org_unit=us.unit)
    return {
        "cn": cn,
        "us": us,
        "both": both,
        "cn_only": user_with_role("cn-only", "admin", cn.unit),
        "doc_cn": make_document(PO, cn_dept, number="PO-C1"),
        "doc_us": make_document(PO, us_dept, number="PO-U1"),
        "boss_cn": user_with_role("boss-cn", "supervisor", cn.unit),
        "boss_us": user_with_role("boss-us", "supervisor", us.unit),
    }


def test_a_company_rule_watches_its_documents_and_replaces_the_group_rule(
    world: dict[str, Any],
) -> None:
    group = AlertRule.objects.get(code=AlertCode.STALE, company__isnull=True)
    group.days = 0
    group.save()
    assert {i.label for i in alert_items(group)} >= {world["doc_cn"].label, world["doc_us"].label}
    own = alert_rule_save(actor=world["both"], company=world["cn"], code=AlertCode.STALE, days=0)
    assert {i.label for i in alert_items(own)} == {world["doc_cn"].label}
    labels = {i.label for i in alert_items(group)}
    assert world["doc_us"].label in labels and world["doc_cn"].label not in labels


def test_a_company_rule_notifies_only_people_of_that_company(world: dict[str, Any]) -> None:
    AlertRule.objects.filter(company__isnull=True).update(active=False)
    alert_rule_save(
        actor=world["both"], company=world["cn"], code=AlertCode.STALE, days=0,
        recipients_role="supervisor",
    )  # fmt: skip
    runs = alerts_run()
    assert [(r.rule.code, r.rule.company_id, r.count) for r in runs] == [
        (AlertCode.STALE, world["cn"].pk, 1)
    ]
    assert Notification.objects.filter(user=world["boss_cn"], kind="alert_digest").count() == 1
    assert not Notification.objects.filter(user=world["boss_us"], kind="alert_digest").exists()


def test_a_one_company_user_neither_sees_nor_edits_another_company_rules(
    world: dict[str, Any],
) -> None:
    alert_rule_save(actor=world["both"], company=world["us"], code=AlertCode.OVERDUE, days=7)
    with pytest.raises(PermissionDenied):
        alert_rule_save(actor=world["cn_only"], company=world["us"], code=AlertCode.OVERDUE)
    with pytest.raises(PermissionDenied):
        alert_rule_save(actor=world["cn_only"], code=AlertCode.OVERDUE, days=1)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world["cn_only"])
    answer = client.get("/config/alerts/")
    assert answer.status_code == 200
    assert "US01" not in answer.content.decode()
    assert [c for c, _ in answer.context["form"].fields["company"].choices] == ["CN01"]
    refused = client.post(
        "/config/alerts/",
        {"company": "US01", "code": "overdue", "days": "1", "recipients_role": "supervisor"},
    )
    assert refused.status_code == 400
    assert AlertRule.objects.get(company=world["us"], code=AlertCode.OVERDUE).days == 7
    saved = client.post(
        "/config/alerts/",
        {"company": "CN01", "code": "overdue", "days": "3", "active": "on",
         "recipients_role": "supervisor"},
    )  # fmt: skip
    assert saved.status_code == 302
    assert AlertRule.objects.get(company=world["cn"], code=AlertCode.OVERDUE).days == 3
    event = AuditEvent.objects.filter(action=AuditAction.ALERT_RULE_CHANGED).latest("pk")
    assert event.object_repr == "CN01/overdue" and event.data["days"] == {
        "before": None,
        "after": 3,
    }
