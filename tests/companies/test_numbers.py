"""Numbers are unique per company and type: two companies may each hold PO 4500001, and every
lookup (service, API, CLI, events) finds the right one or refuses an ambiguous number."""

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from closeout.access.companies import company_create
from closeout.core.companies import companies, company_get, company_of
from closeout.core.errors import CompanyAmbiguous, NotFound
from closeout.core.models import Company, OrgUnit
from closeout.core.services import org_unit_create
from closeout.documents.models import Document
from closeout.documents.services import document_get, document_get_visible
from tests.api.conftest import Api
from tests.factories import make_document, user_with_role

pytestmark = pytest.mark.django_db

NUMBER = "4500001"


@pytest.fixture
def two() -> dict[str, Any]:
    cn = company_create(actor=None, code="CN01", name="上海公司", currency="CNY")
    us = company_create(actor=None, code="US01", name="Seattle Inc.", currency="USD")
    cn_dept = org_unit_create(code="CN01-P", name="采购部", parent=cn.unit)
    us_dept = org_unit_create(code="US01-P", name="Purchasing", parent=us.unit)
    return {
        "cn": cn,
        "us": us,
        "cn_doc": make_document("purchase_order", cn_dept, number=NUMBER),
        "us_doc": make_document("purchase_order", us_dept, number=NUMBER),
    }


def test_each_company_holds_its_own_number(two: dict[str, Any]) -> None:
    assert two["cn_doc"].pk != two["us_doc"].pk
    assert two["cn_doc"].company == two["cn"] and two["us_doc"].company == two["us"]
    assert document_get("purchase_order", NUMBER, company="US01") == two["us_doc"]
    assert document_get("purchase_order", NUMBER, company="CN01") == two["cn_doc"]


def test_a_number_in_two_companies_without_a_company_is_ambiguous(two: dict[str, Any]) -> None:
    with pytest.raises(CompanyAmbiguous) as caught:
        document_get("purchase_order", NUMBER)
    assert caught.value.details["companies"] == ["CN01", "US01"]
    assert "CN01, US01" in caught.value.message


def test_the_same_number_twice_in_one_company_is_refused_by_the_database(
    two: dict[str, Any],
) -> None:
    cn_doc = two["cn_doc"]
    with pytest.raises(IntegrityError), transaction.atomic():
        Document.objects.create(
            doc_type="purchase_order",
            number=NUMBER,
            company=cn_doc.company,
            org_unit=cn_doc.org_unit,
            document_date=cn_doc.document_date,
        )


def test_a_user_of_one_company_needs_no_company_code(two: dict[str, Any]) -> None:
    viewer = user_with_role("us-viewer", "auditor", two["us"].unit)
    assert document_get_visible(viewer, "purchase_order", NUMBER) == two["us_doc"]
    with pytest.raises(NotFound) as caught:
        document_get_visible(viewer, "purchase_order", NUMBER, company="CN01")
    missing = document_get_visible
    with pytest.raises(NotFound) as unknown:
        missing(viewer, "purchase_order", "NO-SUCH-NUMBER")
    # Out of scope reads word for word as missing.
    assert caught.value.message == f"no purchase_order numbered '{NUMBER}'"
    assert unknown.value.message == "no purchase_order numbered 'NO-SUCH-NUMBER'"


def test_upsert_updates_the_document_of_the_units_company(two: dict[str, Any]) -> None:
    us_dept = two["us_doc"].org_unit
    again = make_document("purchase_order", us_dept, lines=((3, 7),), number=NUMBER)
    assert again.pk == two["us_doc"].pk
    assert Document.objects.filter(number=NUMBER).count() == 2


def test_base_currency_amount_uses_the_company(two: dict[str, Any]) -> None:
    assert two["us_doc"].company.base_currency == "USD"
    assert two["cn_doc"].company.base_currency == "CNY"


def test_a_unit_belongs_to_its_nearest_company() -> None:
    group = org_unit_create(code="GRP", name="集团")
    sub = org_unit_create(code="GRP-SUB", name="子公司", parent=group, company=True)
    team = org_unit_create(code="GRP-SUB-T", name="组", parent=sub)
    assert company_of(team).unit == sub
    assert company_of(group).unit == group
    assert [c.code for c in companies()] == ["GRP", "GRP-SUB"]
    assert company_get("GRP-SUB").unit == sub
    with pytest.raises(NotFound):
        company_get("NOPE")


def test_api_names_the_companies_of_an_ambiguous_number(two: dict[str, Any], api_for: Any) -> None:
    both: Api = api_for("auditor", unit=two["cn"].unit)
    user_with_role_grant(both, two["us"].unit)
    url = f"/api/documents/purchase_order/{NUMBER}"
    answer = both.get(url)
    assert answer.status_code == 409, answer.content
    assert answer.json()["details"]["companies"] == ["CN01", "US01"]
    assert both.get(url, company="US01").json()["org_unit"] == "US01-P"
    assert both.get(url, company="CN01").json()["org_unit"] == "CN01-P"


def test_api_of_a_one_company_user_finds_its_number_and_nothing_else(
    two: dict[str, Any], api_for: Any
) -> None:
    us_only: Api = api_for("auditor", unit=two["us"].unit)
    url = f"/api/documents/purchase_order/{NUMBER}"
    assert us_only.get(url).json()["org_unit"] == "US01-P"
    assert us_only.get(url, company="CN01").status_code == 404
    assert us_only.get(f"{url}/audit", company="CN01").status_code == 404


def test_events_name_the_company(two: dict[str, Any], api_for: Any) -> None:
    sync: Api = api_for("integration", unit=two["cn"].unit)
    user_with_role_grant(sync, two["us"].unit, role="integration")
    event = {"doc_type": "purchase_order", "number": NUMBER, "kind": "receipt", "line_no": 1}
    sent = sync.post(
        "/api/events",
        {
            "events": [
                {**event, "external_id": "GR-1"},
                {**event, "external_id": "GR-2", "company": "US01", "quantity": "2"},
            ]
        },
    ).json()
    assert [r["outcome"] for r in sent["results"]] == ["rejected", "applied"]
    assert sent["results"][0]["code"] == "company_ambiguous"
    assert two["us_doc"].lines.get().fulfilled_qty == 2


def test_cli_takes_a_company(two: dict[str, Any]) -> None:
    user_with_role("cli-op", "admin", two["us"].unit)
    out = io.StringIO()
    call_command(
        "hold", "purchase_order", NUMBER, "--company", "US01", "--as", "cli-op",
        "--reason", "check", stdout=out,
    )  # fmt: skip
    assert Document.objects.get(pk=two["us_doc"].pk).close_state == "on_hold"
    assert Document.objects.get(pk=two["cn_doc"].pk).close_state == "open"


def test_company_create_is_audited_and_needs_access_management() -> None:
    from closeout.audit.models import AuditAction, AuditEvent
    from closeout.core.errors import PermissionDenied

    root = org_unit_create(code="HQ0", name="总部")
    admin = user_with_role("co-admin", "admin", root)
    company = company_create(actor=admin, code="JP01", name="東京", currency="JPY")
    assert company.base_currency == "JPY" and company.unit.parent is None
    event = AuditEvent.objects.filter(action=AuditAction.COMPANY_CREATED).get()
    assert event.object_repr == "JP01 東京" and event.data["currency"] == "JPY"
    viewer = user_with_role("co-viewer", "auditor", root)
    with pytest.raises(PermissionDenied):
        company_create(actor=viewer, code="JP02", name="大阪", currency="JPY")
    assert not OrgUnit.objects.filter(code="JP02").exists()
    assert not Company.objects.filter(unit__code="JP02").exists()
    assert {"HQ0", "JP01"} <= {c.code for c in companies()}


def user_with_role_grant(api: Api, unit: OrgUnit, role: str = "auditor") -> None:
    from closeout.access.models import Role
    from closeout.access.services import grant_create

    assert api.user is not None
    grant_create(
        actor=None, user=api.user, role=Role.objects.get(code=role), org_unit=unit, reason="test"
    )
