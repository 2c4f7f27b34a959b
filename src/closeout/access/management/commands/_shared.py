"""Parsing shared by the access commands (and the approval commands): ids, users, roles,
organisation units, grants and document types named on the command line. (A leading
underscore: Django does not take this module for a command.)"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_noop

from closeout.access.models import Grant, Role
from closeout.core.doctypes import doc_type_codes
from closeout.core.errors import InvalidInput, NotFound
from closeout.core.inputs import is_digits
from closeout.core.lookup import org_unit_by_code
from closeout.core.models import OrgUnit


def parse_id(value: str, what: str) -> int:
    text = value.strip().lstrip("#")
    if not is_digits(text) or len(text) > 18 or int(text) <= 0:
        raise InvalidInput(
            gettext_noop("%(what)s '%(value)s' is not a number such as 12"),
            details={"field": what},
            params={"what": what, "value": value},
        )
    return int(text)


def user_for(username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(
            gettext_noop("no user '%(username)s'"),
            details={"field": "user"},
            params={"username": username},
        )
    return user


def role_for(code: str) -> Role:
    role = Role.objects.filter(code=code).first()
    if role is None:
        known = ", ".join(Role.objects.order_by("code").values_list("code", flat=True))
        raise NotFound(
            gettext_noop("no role '%(code)s'; roles: %(known)s"),
            details={"field": "role"},
            params={"code": code, "known": known},
        )
    return role


def org_unit_for(code: str) -> OrgUnit:
    return org_unit_by_code(code)


def grant_for(value: str) -> Grant:
    grant_id = parse_id(value, "grant id")
    grant = Grant.objects.select_related("user", "role", "org_unit").filter(pk=grant_id).first()
    if grant is None:
        raise NotFound(
            gettext_noop("no grant #%(grant_id)s"),
            details={"grant": grant_id},
            params={"grant_id": grant_id},
        )
    return grant


def parse_doc_types(value: str | None) -> list[str] | None:
    if value is None:
        return None
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in doc_type_codes()]
    if unknown or not types:
        raise InvalidInput(
            gettext_noop("--types: unknown document type %(value)s; use: %(values)s"),
            details={"field": "types"},
            params={"value": ", ".join(unknown) or "(none)", "values": ", ".join(doc_type_codes())},
        )
    return types
