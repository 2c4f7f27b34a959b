"""Permission checks and grant changes. Every write in closeout calls `require` at call time,
so a grant that ended a second ago no longer works, without any job having to run."""

from datetime import datetime, timedelta
from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.models import Grant, PermissionConflict, Role
from closeout.access.permissions import Perm
from closeout.access.selectors import holds_company_wide, holds_unit_wide, user_permissions
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.core.models import OrgUnit
from closeout.core.notice_kinds import NoticeKind


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
        perm in grant.role.all_permissions() and grant.covers(org_unit, doc_type)
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
    label = Perm(str(perm)).label if str(perm) in Perm.values else str(perm)
    msgids = {
        (False, False): gettext_noop("%(who)s lacks permission '%(perm)s' (%(label)s)"),
        (True, False): gettext_noop("%(who)s lacks permission '%(perm)s' (%(label)s) in %(unit)s"),
        (False, True): gettext_noop("%(who)s lacks permission '%(perm)s' (%(label)s) for %(what)s"),
        (True, True): gettext_noop(
            "%(who)s lacks permission '%(perm)s' (%(label)s) in %(unit)s for %(what)s"
        ),
    }
    raise PermissionDenied(
        msgids[(org_unit is not None, bool(what))],
        details={"permission": str(perm), "user": who, "org_unit": getattr(org_unit, "code", None)},
        params={
            "who": who,
            "perm": perm,
            "label": label,
            "unit": getattr(org_unit, "code", ""),
            "what": what,
        },
    )


def require_company_wide(user: AbstractBaseUser | None, perm: Perm | str, *, what: str) -> None:
    """Raise PermissionDenied unless `user` holds `perm` over the whole company for every type:
    for data that is not divided by organisation unit (configuration, the whole audit chain,
    stored company-wide counts)."""

    require(user, perm, what=what)  # the plain refusal when the permission is missing altogether
    assert user is not None  # noqa: S101 (require refused None)
    if holds_company_wide(user, str(perm)):
        return
    who = user.get_username()
    raise PermissionDenied(
        gettext_noop(
            "%(what)s covers the whole company: it needs '%(perm)s' over the whole organisation "
            "for every document type, and %(who)s holds it only over part of it"
        ),
        details={"permission": str(perm), "user": who, "org_unit": None, "rule": "company_wide"},
        params={"what": what, "perm": perm, "who": who},
    )


def require_unit_wide(
    user: AbstractBaseUser | None, perm: Perm | str, unit: OrgUnit, *, what: str
) -> None:
    """As `require_company_wide`, for one company (or unit): `perm` over `unit` (a grant on it
    or above it) for every document type."""

    require(user, perm, org_unit=unit, what=what)
    assert user is not None  # noqa: S101 (require refused None)
    if holds_unit_wide(user, str(perm), unit):
        return
    who = user.get_username()
    raise PermissionDenied(
        gettext_noop(
            "%(what)s covers the whole of %(unit)s: it needs '%(perm)s' over it for every "
            "document type, and %(who)s holds it only over part of it"
        ),
        params={"what": what, "unit": unit.code, "perm": str(perm), "who": who},
        details={"permission": str(perm), "user": who, "org_unit": unit.code, "rule": "unit_wide"},
    )


def _check_conflicts(user: AbstractBaseUser, role: Role) -> None:

    perms = user_permissions(user, extra_role=role)
    for conflict in PermissionConflict.objects.all():
        if conflict.perm_a in perms and conflict.perm_b in perms:
            raise PermissionDenied(
                gettext_noop(
                    "separation of duties: %(user)s would hold both '%(perm_a)s' and '%(perm_b)s' "
                    "(%(reason)s)"
                ),
                details={
                    "rule": "permission_conflict",
                    "perms": [conflict.perm_a, conflict.perm_b],
                },
                params={
                    "user": user.get_username(),
                    "perm_a": conflict.perm_a,
                    "perm_b": conflict.perm_b,
                    "reason": conflict.reason,
                },
            )


def _grant_data(grant: Grant) -> dict[str, Any]:
    return {
        "user": grant.user.get_username(),
        "role": grant.role.code,
        "org_unit": grant.org_unit.code,
        "doc_types": grant.doc_types,
        "valid_from": grant.valid_from,
        "valid_until": grant.valid_until,
    }


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
                gettext_noop("separation of duties: nobody grants a role to themselves"),
                details={"rule": "no_self_grant", "message_zh": "职责分离：任何人不得给自己授权。"},
                params={},
            )
    if valid_until is not None and valid_until <= (valid_from or timezone.now()):
        raise InvalidInput(
            gettext_noop("a grant must end after it starts"),
            details={"field": "valid_until"},
            params={},
        )
    _check_conflicts(user, role)
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
    return grant_save(grant, actor=actor)


def grant_save(grant: Grant, *, actor: AbstractBaseUser | None) -> Grant:
    """Store a new grant and write its audit event. The checks are the caller's:
    `grant_create`'s, or a new company's extension of a group-wide role (access.companies)."""
    grant.save()
    audit_record(
        actor=actor,
        action=AuditAction.GRANT_CREATED,
        object_type=AuditObject.GRANT,
        object_id=grant.pk,
        object_repr=str(grant),
        data=_grant_data(grant),
        reason=grant.reason,
    )
    return grant


def grant_create_temporary(
    *,
    actor: AbstractBaseUser,
    user: AbstractBaseUser,
    role: Role,
    org_unit: OrgUnit,
    valid_until: datetime,
    reason: str,
    valid_from: datetime | None = None,
    doc_types: list[str] | None = None,
) -> Grant:
    """Emergency grant (临时授权): it stops working at `valid_until` without any job running."""
    if not reason.strip():
        raise InvalidInput(
            gettext_noop("a temporary grant needs a reason"), details={"field": "reason"}, params={}
        )
    return grant_create(
        actor=actor,
        user=user,
        role=role,
        org_unit=org_unit,
        doc_types=doc_types,
        valid_from=valid_from,
        valid_until=valid_until,
        reason=reason,
    )


def _lock_grant(grant_id: int) -> Grant:
    return (
        Grant.objects.select_for_update(no_key=True)
        .select_related("user", "role", "org_unit")
        .get(pk=grant_id)
    )


@transaction.atomic
def grant_revoke(*, actor: AbstractBaseUser, grant: Grant, reason: str) -> Grant:
    grant = _lock_grant(grant.pk)
    require(actor, Perm.ACCESS_MANAGE, org_unit=grant.org_unit, what="revoking grants")
    if grant.revoked_at is not None:
        raise InvalidInput(
            gettext_noop("grant %(grant)s was already revoked"), params={"grant": grant.pk}
        )
    if not reason.strip():
        raise InvalidInput(
            gettext_noop("revoking a grant needs a reason"), details={"field": "reason"}, params={}
        )
    grant.revoked_at = timezone.now()
    grant.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action=AuditAction.GRANT_REVOKED,
        object_type=AuditObject.GRANT,
        object_id=grant.pk,
        object_repr=str(grant),
        data=_grant_data(grant),
        reason=reason,
    )
    return grant


@transaction.atomic
def grant_extend(
    *, actor: AbstractBaseUser, grant: Grant, valid_until: datetime, reason: str
) -> Grant:
    grant = _lock_grant(grant.pk)
    require(actor, Perm.ACCESS_MANAGE, org_unit=grant.org_unit, what="extending grants")
    if actor.pk == grant.user_id:
        raise PermissionDenied(
            gettext_noop("separation of duties: nobody extends their own grant"),
            details={"rule": "no_self_extend"},
            params={},
        )
    if grant.revoked_at is not None:
        raise InvalidInput(
            gettext_noop("grant %(grant)s was revoked and cannot be extended"),
            params={"grant": grant.pk},
        )
    if not reason.strip():
        raise InvalidInput(
            gettext_noop("extending a grant needs a reason"), details={"field": "reason"}, params={}
        )
    before = grant.valid_until
    grant.valid_until = valid_until
    grant.save(update_fields=["valid_until"])
    audit_record(
        actor=actor,
        action=AuditAction.GRANT_EXTENDED,
        object_type=AuditObject.GRANT,
        object_id=grant.pk,
        object_repr=str(grant),
        data={"valid_until": {"before": before, "after": valid_until}},
        reason=reason,
    )
    return grant


class Announce(Protocol):
    """How a grant's end is announced: `notifications.services.notify`, passed in by the
    periodic task (notifications builds on access, not the other way round)."""

    def __call__(
        self, *, recipients: list[AbstractBaseUser], kind: NoticeKind, context: dict[str, Any]
    ) -> object: ...


def grants_expire(
    *, notify: Announce, now: datetime | None = None, warn_hours: int = 24
) -> dict[str, int]:
    """Periodic: record and announce grants that have ended, and warn of those ending soon.
    The grants stop working at their end time anyway (checked at call time); this only
    writes the audit trail and the notifications, once per grant."""
    moment = now or timezone.now()
    expired = warned = 0
    ended = Grant.objects.filter(
        valid_until__lte=moment, revoked_at__isnull=True, expired_notified_at__isnull=True
    ).values_list("pk", flat=True)
    for grant_id in list(ended):
        with transaction.atomic():
            grant = _lock_grant(grant_id)
            if grant.expired_notified_at is not None:
                continue
            grant.expired_notified_at = moment
            grant.save(update_fields=["expired_notified_at"])
            audit_record(
                actor=None,
                action=AuditAction.GRANT_EXPIRED,
                object_type=AuditObject.GRANT,
                object_id=grant.pk,
                object_repr=str(grant),
                data=_grant_data(grant),
            )
            notify(
                recipients=[u for u in (grant.user, grant.granted_by) if u is not None],
                kind=NoticeKind.GRANT_EXPIRED,
                context={
                    "user": grant.user.get_username(),
                    "role": grant.role.code,
                    "org_unit": grant.org_unit.code,
                    "valid_until": grant.valid_until,
                },
            )
            expired += 1
    soon = Grant.objects.filter(
        valid_until__gt=moment,
        valid_until__lte=moment + timedelta(hours=warn_hours),
        revoked_at__isnull=True,
        expiring_notified_at__isnull=True,
    ).values_list("pk", flat=True)
    for grant_id in list(soon):
        with transaction.atomic():
            grant = _lock_grant(grant_id)
            if grant.expiring_notified_at is not None:
                continue
            grant.expiring_notified_at = moment
            grant.save(update_fields=["expiring_notified_at"])
            notify(
                recipients=[u for u in (grant.user, grant.granted_by) if u is not None],
                kind=NoticeKind.GRANT_EXPIRING,
                context={
                    "user": grant.user.get_username(),
                    "role": grant.role.code,
                    "org_unit": grant.org_unit.code,
                    "valid_until": grant.valid_until,
                },
            )
            warned += 1
    return {"expired": expired, "expiring": warned}
