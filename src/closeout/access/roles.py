"""The permission sets of roles (角色权限), changed in the workbench (设置 → 角色) by someone
with access.manage over the whole company. Separation of duties: nobody changes a role they hold
(directly or through a role that includes it), and no role or holder may end up with two
permissions that conflict. Each change is audited with the set before and after."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.models import Grant, PermissionConflict, Role
from closeout.access.permissions import Perm
from closeout.access.selectors import user_permissions
from closeout.access.services import require_company_wide
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import Bilingual, InvalidInput, PermissionDenied
from closeout.core.fields import field_words

REASON_MAX = 200


def included_roles(role: Role) -> set[int]:
    """The ids of `role` and of every role it includes, however deep (cycles tolerated)."""
    seen: set[int] = set()
    stack = [role]
    while stack:
        current = stack.pop()
        if current.pk in seen:
            continue
        seen.add(current.pk)
        stack.extend(current.includes.all())
    return seen


def roles_granting(role: Role) -> list[Role]:
    """The roles whose holders hold `role`'s permissions: itself and those including it."""
    return [r for r in Role.objects.prefetch_related("includes") if role.pk in included_roles(r)]


def role_words(role: Role) -> Bilingual:
    """A role in a message: its code in English (as the API says), its name in Chinese."""
    return Bilingual(role.code, role.name_zh or role.code)


def _conflict_in(perms: set[str]) -> PermissionConflict | None:
    for conflict in PermissionConflict.objects.order_by("pk"):
        if conflict.perm_a in perms and conflict.perm_b in perms:
            return conflict
    return None


def _refuse_conflict(who: object, conflict: PermissionConflict) -> PermissionDenied:
    return PermissionDenied(
        gettext_noop(
            "separation of duties: %(user)s would hold both '%(perm_a)s' and '%(perm_b)s' "
            "(%(reason)s)"
        ),
        details={"rule": "permission_conflict", "perms": [conflict.perm_a, conflict.perm_b]},
        params={
            "user": who,
            "perm_a": conflict.perm_a,
            "perm_b": conflict.perm_b,
            "reason": conflict.reason,
        },
    )


@transaction.atomic
def role_permissions_set(
    *, actor: AbstractBaseUser, role: Role, permissions: Iterable[str], reason: str
) -> Role:
    """Give `role` exactly `permissions` (its own; included roles keep theirs)."""
    require_company_wide(actor, Perm.ACCESS_MANAGE, what="the permissions of roles")
    role = Role.objects.select_for_update().get(pk=role.pk)
    wanted = sorted(set(permissions))
    unknown = [p for p in wanted if p not in Perm.values]
    if unknown:
        raise InvalidInput(
            gettext_noop("unknown permission '%(perm)s'"),
            details={"field": "permissions", "allowed": list(Perm.values)},
            params={"perm": unknown[0]},
        )
    reason = reason.strip()
    if not reason:
        raise InvalidInput(
            gettext_noop("changing the permissions of a role needs a reason"),
            details={"field": "reason"},
            params={},
        )
    if len(reason) > REASON_MAX:
        raise InvalidInput(
            gettext_noop("the %(field)s has %(n)s characters; at most %(max)s are allowed"),
            details={"field": "reason", "max_length": REASON_MAX},
            params={"field": field_words("reason"), "n": len(reason), "max": REASON_MAX},
        )
    before = sorted(role.permissions)
    if wanted == before:
        raise InvalidInput(
            gettext_noop("role %(role)s already has exactly these permissions"),
            details={"field": "permissions"},
            params={"role": role_words(role)},
        )
    granting = roles_granting(role)
    held = Grant.objects.active().filter(user_id=actor.pk, role__in=granting)
    if held.exists():
        raise PermissionDenied(
            gettext_noop(
                "separation of duties: %(user)s holds the role %(role)s and cannot change its "
                "permissions"
            ),
            details={"rule": "no_self_role_change", "role": role.code},
            params={"user": actor.get_username(), "role": role_words(role)},
        )
    role.permissions = wanted
    added = sorted(set(wanted) - set(before))
    if added:
        conflict = _conflict_in(role.all_permissions())
        if conflict is not None:
            raise _refuse_conflict(role_words(role), conflict)
        holders = Grant.objects.active().filter(role__in=granting).select_related("user")
        for user in {g.user_id: g.user for g in holders}.values():
            conflict = _conflict_in(user_permissions(user) | role.all_permissions())
            if conflict is not None:
                raise _refuse_conflict(user.get_username(), conflict)
    role.save(update_fields=["permissions"])
    audit_record(
        actor=actor,
        action=AuditAction.ROLE_CHANGED,
        object_type=AuditObject.ROLE,
        object_id=role.pk,
        object_repr=str(role),
        data={
            "role": role.code,
            "before": before,
            "after": wanted,
            "added": added,
            "removed": sorted(set(before) - set(wanted)),
        },
        reason=reason,
    )
    return role
