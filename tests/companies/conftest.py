"""The API helpers of tests/api serve the company tests too."""

from closeout.access.companies import company_create
from closeout.core.models import Company, OrgUnit
from closeout.core.services import org_unit_create
from tests.api.conftest import _api_defaults, api_for

__all__ = ["_api_defaults", "api_for", "two_companies"]


def two_companies(
    codes: tuple[str, str] = ("CN01", "US01"),
) -> tuple[Company, Company, OrgUnit, OrgUnit]:
    """Two companies, the first in CNY and the second in USD, each with a purchasing unit
    coded CODE-P."""
    first = company_create(actor=None, code=codes[0], name="上海公司", currency="CNY")
    second = company_create(actor=None, code=codes[1], name="Seattle Inc.", currency="USD")
    return (
        first,
        second,
        org_unit_create(code=f"{codes[0]}-P", name="采购", parent=first.unit),
        org_unit_create(code=f"{codes[1]}-P", name="Purchasing", parent=second.unit),
    )
