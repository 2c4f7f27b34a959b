"""A new company keeps the group's people group-wide: a role held permanently, for every type,
over every company extends to the new company (each grant audited); a role over one company, a
temporary one or one limited to some types does not."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.access.companies import GROUP_ROLE_REASON, company_create
from closeout.access.models import Grant, Role
from closeout.access.selectors import holds_company_wide
from closeout.access.services import grant_create
from closeout.audit.models import AuditAction, AuditEvent
from tests.companies.conftest import two_companies
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db


def _grant(user: User, role: str, unit: object, **extra: object) -> None:
    grant_create(actor=None, user=user, role=Role.objects.get(code=role), org_unit=unit, **extra)


def test_a_group_role_extends_to_a_new_company_and_nothing_else_does() -> None:
    cn, us, _cn_p, _us_p = two_companies()
    admin = user_with_role("group-admin", "admin", cn.unit)
    _grant(admin, "admin", us.unit)
    auditor = user_with_role("group-auditor", "auditor", cn.unit)
    _grant(auditor, "auditor", us.unit)
    one_company = user_with_role("cn-admin", "admin", cn.unit)
    temporary = user_with_role("temp-admin", "admin", cn.unit)
    _grant(temporary, "admin", us.unit, valid_until=timezone.now() + timedelta(days=3))
    some_types = user_with_role("po-admin", "admin", cn.unit, doc_types=["purchase_order"])
    _grant(some_types, "admin", us.unit, doc_types=["purchase_order"])
    assert holds_company_wide(admin, "access.manage")

    jp = company_create(actor=admin, code="JP01", name="Tokyo KK", currency="JPY")

    extended = Grant.objects.filter(org_unit=jp.unit)
    assert sorted((g.user.username, g.role.code) for g in extended) == [
        ("group-admin", "admin"),
        ("group-auditor", "auditor"),
    ]
    assert all(g.reason == GROUP_ROLE_REASON and g.granted_by == admin for g in extended)
    # The creator stays group-wide: the configuration over every company is still theirs.
    assert holds_company_wide(admin, "access.manage")
    assert holds_company_wide(auditor, "audit.view")
    for user in (one_company, temporary, some_types):
        assert not holds_company_wide(user, "access.manage")
    events = AuditEvent.objects.filter(action=AuditAction.GRANT_CREATED, reason=GROUP_ROLE_REASON)
    assert sorted(e.data["user"] for e in events) == ["group-admin", "group-auditor"]
    assert {e.data["org_unit"] for e in events} == {"JP01"}
