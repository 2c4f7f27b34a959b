"""Creating a company (公司): a service of access, because a company adds a scope of grants and
needs the right to manage access over the whole installation. The company model and its
lookups are in `closeout.core.companies`."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.companies import check_company_input, company_profile_add
from closeout.core.errors import Conflict
from closeout.core.models import Company, OrgUnit
from closeout.core.services import org_unit_create


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
    to manage access over the whole installation (it adds a scope); audited."""
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
    return company
