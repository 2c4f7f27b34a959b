"""Configuration services (issue 17 item 10): reason codes, accounting periods, approval routes;
each refused without the permission, each recorded with before and after."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.approvals.models import AccountingPeriod, ApprovalRoute
from closeout.approvals.periods import period_create, period_set_closed
from closeout.approvals.routes import RouteInput, StepInput, route_save
from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.models import ReasonCode
from closeout.closing.reasons import reason_code_save
from closeout.closing.services import close_period_check
from closeout.core.errors import InvalidInput, PermissionDenied
from tests.factories import Org, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(org: Org) -> User:
    return user_with_role("cfg", "admin", org.company)


def last(action: AuditAction) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action).order_by("-seq").first()
    assert event is not None
    return event


def test_reason_code_created_changed_and_audited(admin: User) -> None:
    reason_code_save(
        actor=admin, code="cfg_test_reason", action="reopen", label_zh="迟到交货", label_en="Late"
    )
    event = last(AuditAction.REASON_CHANGED)
    assert event.data["label_zh"] == {"before": None, "after": "迟到交货"}
    reason_code_save(
        actor=admin,
        code="cfg_test_reason",
        action="reopen",
        label_zh="迟到交货",
        label_en="Late delivery",
        active=False,
    )
    event = last(AuditAction.REASON_CHANGED)
    assert event.data == {
        "label_en": {"before": "Late", "after": "Late delivery"},
        "active": {"before": True, "after": False},
    }
    assert not ReasonCode.objects.get(code="cfg_test_reason").active


def test_reason_code_refusals(admin: User, operator: User) -> None:
    with pytest.raises(PermissionDenied):
        reason_code_save(actor=operator, code="x", action="close", label_zh="x", label_en="x")
    with pytest.raises(InvalidInput, match="letters"):
        reason_code_save(actor=admin, code="a b", action="close", label_zh="x", label_en="x")
    with pytest.raises(InvalidInput, match="label_en"):
        reason_code_save(actor=admin, code="ab", action="close", label_zh="x", label_en=" ")
    system = ReasonCode.objects.filter(system=True).first()
    assert system is not None
    with pytest.raises(InvalidInput, match="system"):
        reason_code_save(actor=admin, code=system.code, action="close", label_zh="x", label_en="x")


def test_period_close_and_open_again(admin: User, operator: User) -> None:
    period = period_create(
        actor=admin, name="2026-01", start=date(2026, 1, 1), end=date(2026, 1, 31)
    )
    with pytest.raises(InvalidInput, match="overlaps"):
        period_create(actor=admin, name="X", start=date(2026, 1, 31), end=date(2026, 2, 5))
    with pytest.raises(InvalidInput, match="before the start"):
        period_create(actor=admin, name="Y", start=date(2026, 3, 5), end=date(2026, 3, 1))
    with pytest.raises(PermissionDenied):
        period_set_closed(actor=operator, period_id=period.pk, closed=True)
    period_set_closed(actor=admin, period_id=period.pk, closed=True)
    assert last(AuditAction.PERIOD_CHANGED).data == {"closed": {"before": False, "after": True}}
    with pytest.raises(InvalidInput, match="closed accounting period"):
        close_period_check(date(2026, 1, 15), field="close_date")
    with pytest.raises(InvalidInput, match="needs a reason"):
        period_set_closed(actor=admin, period_id=period.pk, closed=False)
    period_set_closed(actor=admin, period_id=period.pk, closed=False, reason="audit adjustment")
    assert not AccountingPeriod.objects.get(pk=period.pk).closed
    assert last(AuditAction.PERIOD_CHANGED).reason == "audit adjustment"
    close_period_check(date(2026, 1, 15), field="close_date")


def test_route_saved_with_steps_and_audited(admin: User, org: Org) -> None:
    data = RouteInput(
        name="PO exceptions",
        action="close",
        doc_type="purchase_order",
        org_unit=org.dept_a.code,
        condition="exception",
        min_open_value=Decimal(1000),
        steps=[StepInput("主管", "supervisor", 8), StepInput("财务", "finance", 24)],
    )
    route = route_save(actor=admin, data=data)
    assert [s.role.code for s in route.steps.order_by("order")] == ["supervisor", "finance"]
    event = last(AuditAction.ROUTE_CHANGED)
    assert event.data["steps"]["before"] is None and len(event.data["steps"]["after"]) == 2
    changed = RouteInput(**{**data.__dict__, "priority": 5, "steps": [StepInput("s", "finance")]})
    route_save(actor=admin, data=changed, route_id=route.pk)
    event = last(AuditAction.ROUTE_CHANGED)
    assert set(event.data) == {"priority", "steps"}
    assert event.data["priority"] == {"before": 100, "after": 5}
    assert ApprovalRoute.objects.get(pk=route.pk).steps.count() == 1


def test_route_refusals(admin: User, operator: User) -> None:
    data = RouteInput(name="r", action="close", steps=[StepInput("x", "operator")])
    with pytest.raises(PermissionDenied, match="could never decide"):
        route_save(actor=admin, data=data)
    with pytest.raises(PermissionDenied):
        route_save(actor=operator, data=RouteInput("r", "close", [StepInput("s", "supervisor")]))
    with pytest.raises(InvalidInput, match="at least one step"):
        route_save(actor=admin, data=RouteInput("r", "close", []))
    with pytest.raises(InvalidInput, match="organisation unit"):
        route_save(
            actor=admin,
            data=RouteInput("r", "close", [StepInput("s", "supervisor")], org_unit="NOPE"),
        )
    assert not ApprovalRoute.objects.filter(name="r").exists()


def test_self_grant_refused_and_temporary_grant(admin: User, org: Org) -> None:
    role = Role.objects.get(code="auditor")
    with pytest.raises(PermissionDenied, match="themselves"):
        grant_create(actor=admin, user=admin, role=role, org_unit=org.company)
