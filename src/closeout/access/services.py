"""Permission checks and grant changes. Every write in closeout calls `require` at call time,
so a grant that ended a second ago no longer works, without any job having to run."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from closeout.access.models import Grant, Role
from closeout.access.permissions import Perm
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_record
from closeout.core.errors import PermissionDenied
from closeout.core.models import OrgUnit


def _grant_covers(grant: Grant, org_unit: OrgUnit | None, doc_type: str | None) -> bool:
    if org_unit is not None and not org_unit.path.startswith(grant.org_unit.path):
        return False
    return not (doc_type and grant.doc_types and doc_type not in grant.doc_types)


def user_has_perm(
    user: AbstractBaseUser | None,
    perm: str,
    *,
    org_unit: OrgUnit | None = None,
    doc_type: str | None = None,
) -> bool:
    if user is None or not user.is_active:
        return False
    grants = Grant.objects.active().filter(user_id=user.pk).select_related("role", "org_unit")
    return any(
        perm in grant.role.all_permissions() and _grant_covers(grant, org_unit, doc_type)
        for grant in grants
    )


def require(
    user: AbstractBaseUser | None,
    perm: Perm | str,
    *,
    org_unit: OrgUnit | None = None,
    doc_type: str | None = None,
    what: str = "",
) -> None:
    """Raise PermissionDenied naming the missing permission and scope."""
    if user_has_perm(user, str(perm), org_unit=org_unit, doc_type=doc_type):
        return
    who = user.get_username() if user is not None else "anonymous"
    scope = f" in {org_unit.code}" if org_unit is not None else ""
    label = Perm(str(perm)).label if str(perm) in Perm.values else str(perm)
    target = f" for {what}" if what else ""
    raise PermissionDenied(
        f"{who} lacks permission '{perm}' ({label}){scope}{target}",
        details={"permission": str(perm), "user": who, "org_unit": getattr(org_unit, "code", None)},
    )


@transaction.atomic
def grant_create(
    *,
    actor: AbstractBaseUser | None,
    user: AbstractBaseUser,
    role: Role,
    org_unit: OrgUnit,
    doc_types: list[str] | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    reason: str = "",
) -> Grant:
    """Create a grant. `actor=None` is the installer (migrations, `closeout demo`)."""
    if actor is not None:
        require(actor, Perm.ACCESS_MANAGE, org_unit=org_unit, what="granting roles")
        if actor.pk == user.pk:
            raise PermissionDenied(
                "separation of duties: nobody grants a role to themselves",
                details={"rule": "no_self_grant"},
            )
    grant = Grant(
        user_id=user.pk,
        role=role,
        org_unit=org_unit,
        doc_types=doc_types or [],
        reason=reason,
        granted_by_id=actor.pk if actor is not None else None,
        valid_until=valid_until,
    )
    if valid_from is not None:
        grant.valid_from = valid_from
    grant.save()
    audit_record(
        actor=actor,
        action=AuditAction.GRANT_CREATED,
        object_type="grant",
        object_id=grant.pk,
        object_repr=str(grant),
        data={
            "user": user.get_username(),
            "role": role.code,
            "org_unit": org_unit.code,
            "doc_types": grant.doc_types,
            "valid_from": grant.valid_from,
            "valid_until": valid_until,
        },
        reason=reason,
    )
    return grant
