"""Master data by the codes people and ERPs type: the one lookup of an organisation unit."""

from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput
from closeout.core.models import OrgUnit


def unknown_org_unit(code: str, *, field: str = "org_unit") -> InvalidInput:
    return InvalidInput(
        gettext_noop("unknown organisation unit '%(code)s'"),
        details={"field": field},
        params={"code": code[:60]},
    )


def org_unit_by_code(code: str, *, field: str = "org_unit") -> OrgUnit:
    """The unit with this code; InvalidInput naming `field` (the form field, API parameter or
    CLI option the code came from) when there is none. Access is the caller's check."""
    unit = OrgUnit.objects.filter(code=code).first()
    if unit is None:
        raise unknown_org_unit(code, field=field)
    return unit
