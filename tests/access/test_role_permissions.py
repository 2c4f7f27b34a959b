"""Changing the permission set of a role (设置 → 角色权限): access.manage over the whole company,
separation of duties (nobody changes a role they hold, directly or through a role including
it; no role or holder ends up with two conflicting permissions), audited before/after."""

import pytest
from django.contrib.auth.models import User
from django.utils import translation

from closeout.access.models import PermissionConflict, Role
from closeout.access.roles import role_permissions_set
from closeout.access.services import user_has_perm
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.core.errors import InvalidInput, PermissionDenied
from tests.factories import Org, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(org: Org) -> User:
    return user_with_role("boss", "admin", org.company)


def test_admin_adds_and_removes_a_permission_with_an_audit_event(org: Org, admin: User) -> None:
    auditor = Role.objects.get(code="auditor")
    before = sorted(auditor.permissions)
    reader = user_with_role("reader", "auditor", org.company)
    assert not user_has_perm(reader, "document.hold", org_unit=org.dept_a)

    after = sorted({*before, "document.hold"} - {"report.view"})
    role_permissions_set(actor=admin, role=auditor, permissions=after, reason="年末 review")

    auditor.refresh_from_db()
    assert sorted(auditor.permissions) == after
    assert user_has_perm(reader, "document.hold", org_unit=org.dept_a)
    event = AuditEvent.objects.get(action=AuditAction.ROLE_CHANGED)
    assert event.object_type == AuditObject.ROLE and event.reason == "年末 review"
    assert event.data["before"] == before and event.data["after"] == after
    assert event.data["added"] == ["document.hold"] and event.data["removed"] == ["report.view"]


def test_nobody_changes_a_role_they_hold_even_through_an_included_role(org: Org) -> None:
    # The supervisor role includes operator: a manager holding supervisor holds operator too.
    manager = user_with_role("mgr", "supervisor", org.company)
    supervisor = Role.objects.get(code="supervisor")
    supervisor.permissions = [*supervisor.permissions, "access.manage"]
    supervisor.save()
    for code in ("supervisor", "operator"):
        role = Role.objects.get(code=code)
        with pytest.raises(PermissionDenied, match="separation of duties") as refused:
            role_permissions_set(
                actor=manager, role=role, permissions=[*role.permissions, "audit.view"], reason="r"
            )
        assert refused.value.details["rule"] == "no_self_role_change"
        with translation.override("zh-hans"):
            assert "职责分离" in refused.value.text()
    assert not AuditEvent.objects.filter(action=AuditAction.ROLE_CHANGED).exists()


def test_refusals_name_what_is_wrong(org: Org, admin: User) -> None:
    auditor = Role.objects.get(code="auditor")
    with pytest.raises(InvalidInput, match=r"unknown permission 'close\.everything'"):
        role_permissions_set(
            actor=admin, role=auditor, permissions=["close.everything"], reason="r"
        )
    with pytest.raises(InvalidInput, match="needs a reason"):
        role_permissions_set(actor=admin, role=auditor, permissions=["audit.view"], reason=" ")
    with pytest.raises(InvalidInput, match="already has exactly these permissions"):
        role_permissions_set(
            actor=admin, role=auditor, permissions=list(auditor.permissions), reason="r"
        )
    operator = user_with_role("op2", "operator", org.company)
    with pytest.raises(PermissionDenied, match=r"lacks permission 'access\.manage'"):
        role_permissions_set(actor=operator, role=auditor, permissions=["audit.view"], reason="r")


def test_a_conflicting_pair_is_refused_for_the_role_and_for_its_holders(
    org: Org, admin: User
) -> None:
    PermissionConflict.objects.create(
        perm_a="close.direct", perm_b="audit.view", reason="审计不得结案 auditors do not close"
    )
    auditor = Role.objects.get(code="auditor")
    with pytest.raises(PermissionDenied, match="would hold both"):
        role_permissions_set(
            actor=admin,
            role=auditor,
            permissions=[*auditor.permissions, "close.direct"],
            reason="r",
        )
    # A holder of two roles: the change to one would give them the pair through the other.
    both = user_with_role("both", "auditor", org.company)
    from closeout.access.services import grant_create

    grant_create(
        actor=None, user=both, role=Role.objects.get(code="integration"), org_unit=org.company
    )
    integration = Role.objects.get(code="integration")
    with pytest.raises(PermissionDenied, match="both would hold both"):
        role_permissions_set(
            actor=admin,
            role=integration,
            permissions=[*integration.permissions, "close.direct"],
            reason="r",
        )
    assert sorted(Role.objects.get(code="integration").permissions) == sorted(
        integration.permissions
    )
