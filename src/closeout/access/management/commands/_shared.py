"""Parsing shared by the access commands (and the approval commands): ids, users, roles,
organisation units, grants and document types named on the command line. (A leading
underscore: Django does not take this module for a command.)"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from closeout.access.models import Grant, Role
from closeout.core.doctypes import doc_type_codes
from closeout.core.errors import InvalidInput, NotFound
from closeout.core.inputs import is_digits
from closeout.core.models import OrgUnit


def parse_id(value: str, what: str) -> int:
    text = value.strip().lstrip("#")
    if not is_digits(text) or len(text) > 18 or int(text) <= 0:
        raise InvalidInput(f"{what} '{value}' is not a number such as 12", details={"field": what})
    return int(text)


def user_for(username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"no user '{username}'", details={"field": "user"})
    return user


def role_for(code: str) -> Role:
    role = Role.objects.filter(code=code).first()
    if role is None:
        known = ", ".join(Role.objects.order_by("code").values_list("code", flat=True))
        raise NotFound(f"no role '{code}'; roles: {known}", details={"field": "role"})
    return role


def org_unit_for(code: str) -> OrgUnit:
    unit = OrgUnit.objects.filter(code=code).first()
    if unit is None:
        raise NotFound(f"no organisation unit '{code}'", details={"field": "org_unit"})
    return unit


def grant_for(value: str) -> Grant:
    grant_id = parse_id(value, "grant id")
    grant = Grant.objects.select_related("user", "role", "org_unit").filter(pk=grant_id).first()
    if grant is None:
        raise NotFound(f"no grant #{grant_id}", details={"grant": grant_id})
    return grant


def parse_doc_types(value: str | None) -> list[str] | None:
    if value is None:
        return None
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in doc_type_codes()]
    if unknown or not types:
        raise InvalidInput(
            f"--types: unknown document type {', '.join(unknown) or '(none)'}; use: "
            + ", ".join(doc_type_codes()),
            details={"field": "types"},
        )
    return types
