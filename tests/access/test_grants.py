"""Grants (S14): separation of duties when granting, permission conflicts, temporary grants at
their exact end, early revocation, and the periodic expiry task."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from pytest_django.fixtures import Settings

from closeout.access.models import Grant, PermissionConflict, Role
from closeout.access.services import (
    grant_create,
    grant_create_temporary,
    grant_extend,
    grant_revoke,
    grants_expire,
    require,
    user_has_perm,
)
from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.services import document_hold
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import CloseState
from closeout.notifications.models import Notification
from closeout.notifications.services import notify
from tests.factories import PO, Org, make_document, user_with_role


@pytest.fixture(autouse=True)
def fast_passwords(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin(org: Org) -> User:
    return user_with_role("adm", "admin", org.company)


@pytest.fixture
def admin2(org: Org) -> User:
    return user_with_role("adm2", "admin", org.company)


def expire(*, now: datetime) -> dict[str, int]:
    return grants_expire(notify=notify, now=now)


def role(code: str) -> Role:
    return Role.objects.get(code=code)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Time travel: closeout reads the clock through django.utils.timezone.now."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def audit_actions(grant: Grant) -> list[AuditAction]:
    rows = AuditEvent.objects.filter(object_type="grant", object_id=str(grant.pk)).order_by("seq")
    return [AuditAction(a) for a in rows.values_list("action", flat=True)]


# --- separation of duties when granting -------------------------------------------------------


def test_nobody_grants_themselves_a_role(org: Org, admin: User) -> None:
    with pytest.raises(PermissionDenied, match="nobody grants a role to themselves") as refused:
        grant_create(actor=admin, user=admin, role=role("finance"), org_unit=org.company)
    assert refused.value.details["rule"] == "no_self_grant"
    assert Grant.objects.filter(user=admin).count() == 1


def test_granting_needs_access_manage_in_scope(org: Org, admin: User) -> None:
    target = user_with_role("target", None)
    supervisor = user_with_role("boss", "supervisor", org.company)
    with pytest.raises(PermissionDenied, match=r"access\.manage"):
        grant_create(actor=supervisor, user=target, role=role("operator"), org_unit=org.dept_a)
    dept_admin = user_with_role("dept-admin", "admin", org.dept_a)
    with pytest.raises(PermissionDenied, match=r"access\.manage"):
        grant_create(actor=dept_admin, user=target, role=role("operator"), org_unit=org.dept_b)
    grant = grant_create(
        actor=dept_admin, user=target, role=role("operator"), org_unit=org.team_a1, reason="new"
    )
    assert grant.granted_by_id == dept_admin.pk
    assert audit_actions(grant) == [AuditAction.GRANT_CREATED]


def test_nobody_extends_their_own_grant(org: Org, admin: User, admin2: User) -> None:
    now = timezone.now()
    grant = grant_create_temporary(
        actor=admin2,
        user=admin,
        role=role("finance"),
        org_unit=org.company,
        valid_until=now + timedelta(hours=2),
        reason="month end",
    )
    with pytest.raises(PermissionDenied, match="nobody extends their own grant") as refused:
        grant_extend(actor=admin, grant=grant, valid_until=now + timedelta(days=9), reason="more")
    assert refused.value.details["rule"] == "no_self_extend"
    grant.refresh_from_db()
    assert grant.valid_until == now + timedelta(hours=2)

    with pytest.raises(InvalidInput, match="reason"):
        grant_extend(actor=admin2, grant=grant, valid_until=now + timedelta(days=1), reason=" ")
    grant_extend(actor=admin2, grant=grant, valid_until=now + timedelta(days=1), reason="audit")
    grant.refresh_from_db()
    assert grant.valid_until == now + timedelta(days=1)
    assert audit_actions(grant) == [AuditAction.GRANT_CREATED, AuditAction.GRANT_EXTENDED]


def test_conflicting_permissions_cannot_be_combined(org: Org, admin: User) -> None:
    PermissionConflict.objects.create(
        perm_a="close.request", perm_b="close.approve", reason="申请与审批分离"
    )
    buyer = user_with_role("buyer", "operator", org.company)
    with pytest.raises(PermissionDenied) as refused:
        grant_create(actor=admin, user=buyer, role=role("finance"), org_unit=org.dept_a)
    message = refused.value.message
    assert "'close.request'" in message and "'close.approve'" in message
    assert "buyer" in message and "申请与审批分离" in message
    details = dict(refused.value.details)
    assert details.pop("message_zh").startswith("职责分离：buyer 将同时拥有")
    assert details == {"rule": "permission_conflict", "perms": ["close.request", "close.approve"]}
    # Supervisor includes operator: the role alone already combines both.
    fresh_user = user_with_role("fresh", None)
    with pytest.raises(PermissionDenied, match=r"close\.approve"):
        grant_create(actor=admin, user=fresh_user, role=role("supervisor"), org_unit=org.dept_a)
    assert not Grant.objects.filter(
        user__in=[buyer, fresh_user], role__code__in=["finance", "supervisor"]
    ).exists()
    # A role that adds neither side is fine.
    grant_create(actor=admin, user=buyer, role=role("auditor"), org_unit=org.company)


def test_expired_grants_do_not_count_for_conflicts(org: Org, admin: User) -> None:
    PermissionConflict.objects.create(perm_a="close.request", perm_b="close.approve", reason="x")
    former = user_with_role("former", "operator", org.company, valid_until_days=-1)
    grant_create(actor=admin, user=former, role=role("finance"), org_unit=org.company)


# --- temporary grants ------------------------------------------------------------------------


def test_temporary_grant_works_until_its_exact_end(org: Org, admin: User) -> None:
    user = user_with_role("temp", None)
    start = timezone.now()
    end = start + timedelta(hours=8)
    with pytest.raises(InvalidInput, match="reason"):
        grant_create_temporary(
            actor=admin,
            user=user,
            role=role("operator"),
            org_unit=org.dept_a,
            valid_until=end,
            reason="",
        )
    with pytest.raises(InvalidInput, match="end after it starts"):
        grant_create_temporary(
            actor=admin,
            user=user,
            role=role("operator"),
            org_unit=org.dept_a,
            valid_from=end,
            valid_until=end,
            reason="x",
        )
    grant = grant_create_temporary(
        actor=admin,
        user=user,
        role=role("operator"),
        org_unit=org.dept_a,
        valid_from=start,
        valid_until=end,
        reason="紧急 emergency",
    )
    assert (grant.valid_from, grant.valid_until, grant.granted_by_id) == (start, end, admin.pk)

    def can_hold(moment: datetime) -> bool:
        with frozen_at(moment):
            return user_has_perm(user, "document.hold", org_unit=org.team_a1)

    assert not can_hold(start - timedelta(seconds=1))
    assert can_hold(start)
    assert can_hold(end - timedelta(seconds=1))
    assert not can_hold(end)
    assert not can_hold(end + timedelta(days=1))

    # The same through a real service, with the refusal naming the permission.
    document = make_document(PO, org.team_a1)
    with frozen_at(end - timedelta(seconds=1)):
        document_hold(actor=user, document=document, reason="check stock")
    document.refresh_from_db()
    assert document.close_state == CloseState.ON_HOLD
    other = make_document(PO, org.team_a1)
    with (
        frozen_at(end),
        pytest.raises(PermissionDenied, match=r"lacks permission 'document\.hold'"),
    ):
        document_hold(actor=user, document=other, reason="check stock")
    other.refresh_from_db()
    assert other.close_state == CloseState.OPEN


def test_revoking_early_works_at_once(org: Org, admin: User) -> None:
    user = user_with_role("temp", None)
    grant = grant_create_temporary(
        actor=admin,
        user=user,
        role=role("operator"),
        org_unit=org.company,
        valid_until=timezone.now() + timedelta(days=3),
        reason="cover",
    )
    require(user, "close.direct", org_unit=org.team_a1)
    with pytest.raises(InvalidInput, match="needs a reason"):
        grant_revoke(actor=admin, grant=grant, reason="")
    grant_revoke(actor=admin, grant=grant, reason="back from leave")
    with pytest.raises(PermissionDenied, match=r"close\.direct"):
        require(user, "close.direct", org_unit=org.team_a1)
    with pytest.raises(InvalidInput, match="already revoked"):
        grant_revoke(actor=admin, grant=grant, reason="again")
    with pytest.raises(InvalidInput, match="revoked and cannot be extended"):
        grant_extend(
            actor=admin, grant=grant, valid_until=timezone.now() + timedelta(days=9), reason="x"
        )
    assert audit_actions(grant) == [AuditAction.GRANT_CREATED, AuditAction.GRANT_REVOKED]
    revoked = AuditEvent.objects.get(action=AuditAction.GRANT_REVOKED)
    assert revoked.reason == "back from leave"
    assert revoked.actor_id == admin.pk


def test_revoking_needs_access_manage(org: Org, admin: User) -> None:
    user = user_with_role("temp", "operator", org.company)
    grant = Grant.objects.get(user=user)
    with pytest.raises(PermissionDenied, match=r"access\.manage"):
        grant_revoke(actor=user, grant=grant, reason="self")
    assert Grant.objects.active().filter(pk=grant.pk).exists()


def test_grants_expire_records_and_notifies_once(org: Org, admin: User) -> None:
    user = user_with_role("temp", None)
    end = timezone.now() + timedelta(hours=10)
    grant = grant_create_temporary(
        actor=admin,
        user=user,
        role=role("finance"),
        org_unit=org.company,
        valid_until=end,
        reason="closing week",
    )
    lasting = grant_create_temporary(
        actor=admin,
        user=user_with_role("later", None),
        role=role("auditor"),
        org_unit=org.company,
        valid_until=end + timedelta(days=3),
        reason="audit",
    )

    def kinds(who: User) -> list[str]:
        return list(
            Notification.objects.filter(user=who).order_by("id").values_list("kind", flat=True)
        )

    assert expire(now=end - timedelta(hours=25)) == {
        "expired": 0,
        "expiring": 0,
    }
    assert expire(now=end - timedelta(hours=24)) == {
        "expired": 0,
        "expiring": 1,
    }
    assert expire(now=end - timedelta(hours=1)) == {
        "expired": 0,
        "expiring": 0,
    }
    assert kinds(user) == kinds(admin) == ["grant_expiring"]

    assert expire(now=end - timedelta(seconds=1)) == {
        "expired": 0,
        "expiring": 0,
    }
    assert expire(now=end) == {"expired": 1, "expiring": 0}
    assert expire(now=end + timedelta(hours=1)) == {
        "expired": 0,
        "expiring": 0,
    }
    assert kinds(user) == kinds(admin) == ["grant_expiring", "grant_expired"]
    assert audit_actions(grant) == [AuditAction.GRANT_CREATED, AuditAction.GRANT_EXPIRED]
    expired = AuditEvent.objects.get(action=AuditAction.GRANT_EXPIRED)
    assert expired.actor_id is None
    assert audit_actions(lasting) == [AuditAction.GRANT_CREATED]
    grant.refresh_from_db()
    assert grant.expired_notified_at == end


def test_revoked_grants_are_not_announced_as_expired(org: Org, admin: User) -> None:
    user = user_with_role("temp", None)
    end = timezone.now() + timedelta(hours=1)
    grant = grant_create_temporary(
        actor=admin,
        user=user,
        role=role("finance"),
        org_unit=org.company,
        valid_until=end,
        reason="x",
    )
    grant_revoke(actor=admin, grant=grant, reason="done early")
    assert expire(now=end + timedelta(hours=1)) == {
        "expired": 0,
        "expiring": 0,
    }
    assert not Notification.objects.filter(user=user).exists()
