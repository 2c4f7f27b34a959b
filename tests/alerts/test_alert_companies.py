"""Alert rules per company: a company's rule watches only its documents and replaces the
group's rule of the same alert there; its digests reach only people of that company; a user of
one company neither sees nor edits another company's rules."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.alerts.models import AlertCode, AlertRule
from closeout.alerts.selectors import alert_items
from closeout.alerts.services import alert_rule_save, alerts_run
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.errors import PermissionDenied
from closeout.documents.models import Document
from closeout.notifications.models import Notification
from tests.approvals.conftest import make_route, submit_close
from tests.companies.conftest import two_companies
from tests.factories import PO, complete, make_document, set_policy, user_with_role

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
        "cn_dept": cn_dept,
        "us_dept": us_dept,
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


# --- the other four alerts, per company -----------------------------------------------------


def _when(code: str) -> Any:
    """Past the approval step's SLA of 24 h for approval_overdue; now for the others (a
    grant ending tomorrow has not ended yet)."""
    later = timedelta(hours=30) if code == AlertCode.APPROVAL_OVERDUE else timedelta(0)
    return timezone.now() + later


def _one_item_per_company(world: dict[str, Any], code: str) -> dict[str, str]:
    """Something each company's documents, requests or grants raise alert `code` for; the
    text by which each company's item is known in the alert's labels."""
    marks: dict[str, str] = {}
    for key, dept in (("cn", world["cn_dept"]), ("us", world["us_dept"])):
        if code == AlertCode.COMPLETE_BUT_OPEN:
            marks[key] = complete(make_document(PO, dept, number=f"PO-{key}-done")).number
        elif code == AlertCode.OVERDUE:
            late = make_document(PO, dept, number=f"PO-{key}-late")
            Document.objects.filter(pk=late.pk).update(
                expected_date=timezone.localdate() - timedelta(days=10)
            )
            marks[key] = late.number
        elif code == AlertCode.APPROVAL_OVERDUE:
            make_route(f"{key} closes", org_unit=world[key].unit)
            document = make_document(PO, dept, number=f"PO-{key}-asked")
            marks[key] = submit_close(world["both"], document).document.number
        else:
            user_with_role(f"temp-{key}", "operator", dept, valid_until_days=1)
            marks[key] = f"temp-{key}"
    return marks


def _found(rule: AlertRule, marks: dict[str, str]) -> set[str]:
    labels = " ".join(i.label for i in alert_items(rule, now=_when(rule.code)))
    return {key for key, mark in marks.items() if mark in labels}


OTHER_ALERTS = [
    AlertCode.COMPLETE_BUT_OPEN,
    AlertCode.OVERDUE,
    AlertCode.APPROVAL_OVERDUE,
    AlertCode.GRANT_EXPIRING,
]


@pytest.mark.parametrize("code", OTHER_ALERTS)
def test_each_alert_of_a_company_watches_its_company_and_replaces_the_group_rule(
    world: dict[str, Any], code: str
) -> None:
    set_policy(PO, grace_days=0, auto_close_enabled=False)
    marks = _one_item_per_company(world, code)
    group = AlertRule.objects.get(code=code, company__isnull=True)
    group.days = 2 if code == AlertCode.GRANT_EXPIRING else 0
    group.save()
    assert _found(group, marks) == {"cn", "us"}
    own = alert_rule_save(actor=world["both"], company=world["cn"], code=code, days=group.days)
    assert _found(own, marks) == {"cn"}
    assert _found(group, marks) == {"us"}


@pytest.mark.parametrize("code", OTHER_ALERTS)
def test_each_alert_of_a_company_sends_its_digest_to_that_company_only(
    world: dict[str, Any], code: str
) -> None:
    set_policy(PO, grace_days=0, auto_close_enabled=False)
    _one_item_per_company(world, code)
    # Grants are for administrators of their company; the rest for supervisors.
    role = "admin" if code == AlertCode.GRANT_EXPIRING else "supervisor"
    people = {key: user_with_role(f"{role}-{key}", role, world[key].unit) for key in ("cn", "us")}
    AlertRule.objects.filter(company__isnull=True).update(active=False)
    alert_rule_save(
        actor=world["both"], company=world["cn"], code=code, days=2, recipients_role=role
    )
    runs = alerts_run(now=_when(code))
    assert [(r.rule.code, r.rule.company_id, r.count) for r in runs] == [(code, world["cn"].pk, 1)]
    digests = Notification.objects.filter(kind="alert_digest")
    assert digests.filter(user=people["cn"]).count() == 1
    assert not digests.filter(user=people["us"]).exists()
    assert not digests.filter(user=world["boss_us"]).exists()
    cn_people = [people["cn"], world["boss_cn"], world["cn_only"], world["both"]]
    assert not digests.exclude(user__in=cn_people).exists()
