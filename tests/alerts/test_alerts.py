"""Alert rules (S17): each finds what it should, and a run sends one digest per recipient."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from closeout.access.models import Role
from closeout.alerts.models import AlertCode, AlertRule, AlertRun
from closeout.alerts.selectors import alert_items
from closeout.alerts.services import alerts_run
from closeout.approvals.models import ApprovalRoute, ApprovalStep
from closeout.approvals.submit import close_request_submit
from closeout.closing.sweep import sweep_run
from closeout.documents.models import Document, EventKind
from closeout.notifications.models import Notification
from tests.factories import (
    PO,
    Org,
    complete,
    make_document,
    org_tree,
    post,
    set_policy,
    user_with_role,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Org:
    return org_tree()


def _rule(code: str, **values: Any) -> AlertRule:
    rule = AlertRule.objects.get(code=code)
    for name, value in values.items():
        setattr(rule, name, value)
    rule.save()
    return rule


def _labels(rule: AlertRule) -> set[str]:
    return {item.label for item in alert_items(rule)}


def test_complete_but_open_says_why_auto_close_missed_it(org: Org) -> None:
    set_policy(PO, grace_days=0, auto_close_enabled=False)
    done = complete(make_document(PO, org.dept_a), days_ago=30)
    short = make_document(PO, org.dept_a)
    post(short, EventKind.RECEIPT, 1, 1, days_ago=30)
    rule = _rule(AlertCode.COMPLETE_BUT_OPEN, days=3)
    items = alert_items(rule)
    assert [i.label for i in items] == [done.label]
    assert "automatic close is off" in items[0].why
    # With automatic close on, the sweep takes it and the alert is empty.
    set_policy(PO, auto_close_enabled=True)
    sweep_run(doc_type=PO)
    assert _labels(rule) == set()


def test_recent_completion_is_not_yet_an_alert(org: Org) -> None:
    set_policy(PO, grace_days=7, auto_close_enabled=False)
    complete(make_document(PO, org.dept_a), days_ago=5)
    assert _labels(_rule(AlertCode.COMPLETE_BUT_OPEN, days=3)) == set()


def test_overdue_and_stale(org: Org) -> None:
    late = make_document(PO, org.dept_a)
    Document.objects.filter(pk=late.pk).update(
        expected_date=timezone.localdate() - timedelta(days=10)
    )
    on_time = make_document(PO, org.dept_a)
    Document.objects.filter(pk=on_time.pk).update(
        expected_date=timezone.localdate() + timedelta(days=10)
    )
    assert _labels(_rule(AlertCode.OVERDUE, days=7)) == {late.label}
    quiet = make_document(PO, org.dept_a)
    Document.objects.filter(pk=quiet.pk).update(
        last_activity_at=timezone.now() - timedelta(days=100)
    )
    busy = make_document(PO, org.dept_a)
    post(busy, EventKind.RECEIPT, 1, 1, days_ago=1)
    stale = _labels(_rule(AlertCode.STALE, days=90))
    assert quiet.label in stale and busy.label not in stale


def test_approval_overdue_and_grant_expiring(org: Org) -> None:
    route = ApprovalRoute.objects.create(name="all", action="close")
    ApprovalStep.objects.create(
        route=route, order=1, name="主管", sla_hours=4, role=Role.objects.get(code="supervisor")
    )
    requester = user_with_role("alert-req", "operator", org.company)
    request = close_request_submit(
        actor=requester, document=complete(make_document(PO, org.dept_a)), reason_code="completed"
    )
    rule = _rule(AlertCode.APPROVAL_OVERDUE)
    assert alert_items(rule, now=timezone.now() + timedelta(hours=3)) == []
    late = alert_items(rule, now=timezone.now() + timedelta(hours=5))
    assert [i.label for i in late] == [f"#{request.pk} close {request.document.label}"]
    user_with_role("alert-temp", "operator", org.company, valid_until_days=1)
    user_with_role("alert-long", "operator", org.company, valid_until_days=30)
    expiring = _labels(_rule(AlertCode.GRANT_EXPIRING, days=2))
    assert any("alert-temp" in label for label in expiring)
    assert not any("alert-long" in label for label in expiring)


def test_run_records_and_sends_one_digest_per_recipient(org: Org) -> None:
    boss = user_with_role("alert-boss", "supervisor", org.company)
    for _ in range(5):
        quiet = make_document(PO, org.dept_a)
        Document.objects.filter(pk=quiet.pk).update(
            last_activity_at=timezone.now() - timedelta(days=200)
        )
    AlertRule.objects.exclude(code=AlertCode.STALE).update(active=False)
    runs = alerts_run()
    assert [(r.rule.code, r.count) for r in runs] == [(AlertCode.STALE, 5)]
    assert AlertRun.objects.get().by_type == {PO: 5}
    digests = Notification.objects.filter(user=boss, kind="alert_digest")
    assert digests.count() == 1
    assert "5" in digests.get().body
