"""Settings per company: a close policy set on a company unit is that company's, and its units
inherit it; an approval route scoped to a company takes only that company's documents."""

from decimal import Decimal

import pytest

from closeout.access.companies import company_create
from closeout.approvals.models import RequestAction
from closeout.approvals.selectors import route_choose
from closeout.closing.policies import policy_for
from closeout.core.services import org_unit_create
from tests.approvals.conftest import make_route
from tests.factories import make_document, set_policy

pytestmark = pytest.mark.django_db

PO = "purchase_order"


def test_a_company_policy_is_inherited_by_its_units_only() -> None:
    a = company_create(actor=None, code="CO-A", name="甲公司", currency="CNY")
    b = company_create(actor=None, code="CO-B", name="乙公司", currency="USD")
    team_a = org_unit_create(
        code="CO-A-T", name="组", parent=org_unit_create(code="CO-A-P", name="采购", parent=a.unit)
    )
    team_b = org_unit_create(code="CO-B-T", name="Team", parent=b.unit)
    set_policy(PO, a.unit, grace_days=99)
    assert policy_for(PO, team_a).grace_days == 99
    assert policy_for(PO, team_b).org_unit is None  # B keeps the default policy


def test_a_route_of_one_company_takes_only_its_documents() -> None:
    a = company_create(actor=None, code="CO-A", name="甲公司", currency="CNY")
    b = company_create(actor=None, code="CO-B", name="乙公司", currency="USD")
    route = make_route("company A closes", org_unit=a.unit)
    doc_a = make_document(PO, a.unit, number="PO-1")
    doc_b = make_document(PO, b.unit, number="PO-1")
    chosen = {
        d.company.code: route_choose(
            document=d, action=RequestAction.CLOSE, exception=False, open_value=Decimal(1)
        )
        for d in (doc_a, doc_b)
    }
    assert chosen["CO-A"] is not None and chosen["CO-A"].pk == route.pk
    assert chosen["CO-B"] is None
