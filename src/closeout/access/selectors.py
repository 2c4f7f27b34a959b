"""Reads of roles and grants."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils.translation import gettext_noop

from closeout.access.models import Grant, Role
from closeout.access.permissions import Perm
from closeout.core.errors import NotFound
from closeout.core.models import Company, OrgUnit


def roles_including(role_code: str) -> set[str]:
    """The role itself and every role that includes it, directly or through others."""
    result = {role_code}
    changed = True
    pairs = list(Role.includes.through.objects.values_list("from_role__code", "to_role__code"))
    while changed:
        changed = False
        for parent, child in pairs:
            if child in result and parent not in result:
                result.add(parent)
                changed = True
    return result


def user_has_role(
    user: AbstractBaseUser, role_code: str, *, org_unit: OrgUnit | None, doc_type: str | None
) -> bool:
    grants = (
        Grant.objects.active()
        .filter(user_id=user.pk, role__code__in=roles_including(role_code))
        .select_related("org_unit")
    )
    return user.is_active and any(g.covers(org_unit, doc_type) for g in grants)


def users_with_role(
    role_code: str, *, org_unit: OrgUnit | None, doc_type: str | None
) -> list[AbstractBaseUser]:
    grants = (
        Grant.objects.active()
        .filter(role__code__in=roles_including(role_code), user__is_active=True)
        .select_related("org_unit", "user")
    )
    users = {g.user_id: g.user for g in grants if g.covers(org_unit, doc_type)}
    return sorted(users.values(), key=lambda u: u.get_username())


def grants_of(user: AbstractBaseUser) -> list[Grant]:
    return list(Grant.objects.active().filter(user_id=user.pk).select_related("role", "org_unit"))


def user_permissions(user: AbstractBaseUser, *, extra_role: Role | None = None) -> set[str]:
    perms: set[str] = set()
    for grant in Grant.objects.active().filter(user_id=user.pk).select_related("role"):
        perms |= grant.role.all_permissions()
    if extra_role is not None:
        perms |= extra_role.all_permissions()
    return perms


def documents_visible_to(user: AbstractBaseUser, perm: str = Perm.DOCUMENT_VIEW) -> Q:
    """A condition on Document: the organisation subtrees (and types) where the user holds
    `perm` (by default: may view documents) now. Used by every list that shows documents
    (queue, drill-downs, API)."""
    condition = Q(pk__in=[])
    for grant in grants_of(user):
        if perm not in grant.role.all_permissions():
            continue
        if grant.org_unit.parent_id is None and not grant.doc_types and _single_root():
            # The whole company: no filter, so the queue keeps to its index on big tables.
            return Q()
        scope = Q(org_unit__path__startswith=grant.org_unit.path)
        if grant.doc_types:
            scope &= Q(doc_type__in=grant.doc_types)
        condition |= scope
    return condition


def doc_types_with(user: AbstractBaseUser, perm: str) -> frozenset[str] | None:
    """The document types for which `user` holds `perm` somewhere now: None means every type
    (a grant not limited to types), an empty set none."""
    types: set[str] = set()
    for grant in grants_of(user):
        if perm not in grant.role.all_permissions():
            continue
        if not grant.doc_types:
            return None
        types.update(grant.doc_types)
    return frozenset(types)


def _single_root() -> bool:
    return OrgUnit.objects.filter(parent__isnull=True).count() == 1


def holds_company_wide(user: AbstractBaseUser, perm: str) -> bool:
    """Whether `user` holds `perm` now over every root of the organisation for every document
    type: what company-wide data (configuration, the whole audit chain, stored counts) needs."""
    if not user.is_active:
        return False
    roots = set(OrgUnit.objects.filter(parent__isnull=True).values_list("pk", flat=True))
    covered = {
        grant.org_unit_id
        for grant in grants_of(user)
        if grant.org_unit.parent_id is None
        and not grant.doc_types
        and perm in grant.role.all_permissions()
    }
    return bool(roots) and roots <= covered


def holds_unit_wide(user: AbstractBaseUser, perm: str, unit: OrgUnit) -> bool:
    """Whether `user` holds `perm` now over `unit` (granted on it or an ancestor) for every
    document type: what one company's whole data (its evidence pack) needs."""
    if not user.is_active:
        return False
    return any(
        unit.path.startswith(grant.org_unit.path)
        and not grant.doc_types
        and perm in grant.role.all_permissions()
        for grant in grants_of(user)
    )


def user_by_name(username: str) -> AbstractBaseUser:
    """The user named `username`, active or not (account commands act on inactive ones too)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(
            gettext_noop("no user '%(username)s'"),
            details={"field": "username"},
            params={"username": username},
        )
    return user


def companies_managed(user: AbstractBaseUser, perm: str) -> tuple[bool, list[Company]]:
    """Where `user` may set per-company configuration guarded by `perm`: the group (`perm`
    over every company) and the companies over whose whole unit they hold it."""
    everywhere = holds_company_wide(user, perm)
    return everywhere, [
        c
        for c in Company.objects.select_related("unit").order_by("unit__code")
        if everywhere or holds_unit_wide(user, perm, c.unit)
    ]
