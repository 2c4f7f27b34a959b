"""Creating a company (公司): a service of access, because a company adds a scope of grants and
needs the right to manage access over the whole installation. The company model and its
lookups are in `closeout.core.companies`."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.models import Grant
from closeout.access.permissions import Perm
from closeout.access.services import grant_save, require_company_wide
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.companies import check_company_input, company_profile_add
from closeout.core.errors import Conflict
from closeout.core.models import Company, OrgUnit
from closeout.core.services import org_unit_create

GROUP_ROLE_REASON = "new company: a role held over every company extends to it"


def company_create(
    *,
    actor: AbstractBaseUser | None,
    code: str,
    name: str,
    currency: str,
    time_zone: str = "",
    fiscal_year_start_month: int = 1,
) -> Company:
    """A new company: a new root organisation unit marked as a company. Needs the permission
    to manage access over the whole installation (it adds a scope); audited. A role someone
    holds over every company (permanently, for every type) extends to the new one, so that the
    group's administrators, auditors and analysts keep their group-wide view."""
    if actor is not None:
        require_company_wide(actor, Perm.ACCESS_MANAGE, what=f"company {code}")
    check_company_input(code, name, currency, time_zone, fiscal_year_start_month)
    with transaction.atomic():
        if OrgUnit.objects.filter(code=code).exists():
            raise Conflict(
                gettext_noop("organisation unit code '%(code)s' is already taken"),
                details={"field": "code"},
                params={"code": code},
            )
        group_roles = _group_roles()
        unit = org_unit_create(code=code, name=name, company=False)
        company = company_profile_add(
            unit,
            currency=currency,
            time_zone=time_zone,
            fiscal_year_start_month=fiscal_year_start_month,
        )
        audit_record(
            actor=actor,
            action=AuditAction.COMPANY_CREATED,
            object_type=AuditObject.COMPANY,
            object_id=unit.pk,
            object_repr=str(company),
            data={
                "code": code,
                "currency": company.base_currency,
                "time_zone": company.time_zone,
                "fiscal_year_start_month": fiscal_year_start_month,
            },
        )
        _group_roles_extend(actor, unit, group_roles)
    return company


def _group_roles() -> set[tuple[int, int]]:
    """(user, role) of every role held now, permanently and for every type, over every
    company (every root unit)."""
    roots = set(OrgUnit.objects.filter(parent__isnull=True).values_list("pk", flat=True))
    held: dict[tuple[int, int], set[int]] = {}
    grants = Grant.objects.active().filter(
        org_unit_id__in=roots, valid_until__isnull=True, user__is_active=True
    )
    for user_id, role_id, unit_id, doc_types in grants.values_list(
        "user_id", "role_id", "org_unit_id", "doc_types"
    ):
        if not doc_types:
            held.setdefault((user_id, role_id), set()).add(unit_id)
    return {pair for pair, units in held.items() if roots and units >= roots}


def _group_roles_extend(
    actor: AbstractBaseUser | None, unit: OrgUnit, group_roles: set[tuple[int, int]]
) -> None:
    """Each group-wide role over the new company too, each grant audited like any other."""
    for user_id, role_id in sorted(group_roles):
        grant = Grant(
            user_id=user_id,
            role_id=role_id,
            org_unit=unit,
            reason=GROUP_ROLE_REASON,
            granted_by_id=actor.pk if actor is not None else None,
        )
        grant_save(grant, actor=actor)
