"""Currency roll-up: each company's totals in its base currency, the group view converted at a
stated rate table that it names; a viewer of one company sees that company only."""

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from closeout.access.companies import company_create
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.core.services import org_unit_create
from closeout.reports.group import exchange_rate_set, group_report
from tests.factories import make_document, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def group() -> None:
    cn = company_create(actor=None, code="CN01", name="上海公司", currency="CNY")
    us = company_create(actor=None, code="US01", name="Seattle Inc.", currency="USD")
    cn_dept = org_unit_create(code="CN01-P", name="采购", parent=cn.unit)
    us_dept = org_unit_create(code="US01-P", name="Purchasing", parent=us.unit)
    # 10 × 5 = 50 CNY; the US order: 3 × 10 = 30 EUR at 1.1 → 33 USD.
    make_document("purchase_order", cn_dept, ((10, 5),), number="PO-1")
    make_document(
        "purchase_order", us_dept, ((3, 10),), number="PO-1", exchange_rate=Decimal("1.1")
    )
    for day, rate in ((date(2026, 1, 1), "7.0"), (date(2026, 7, 1), "7.2")):
        exchange_rate_set(
            actor=None, table="G26", currency="USD", to_currency="CNY", day=day, rate=Decimal(rate)
        )
    user_with_role("group-analyst", "admin", cn.unit)
    user_with_role("us-analyst", "admin", us.unit)
    from django.contrib.auth.models import User

    from closeout.access.models import Role
    from closeout.access.services import grant_create

    grant_create(
        actor=None,
        user=User.objects.get(username="group-analyst"),
        role=Role.objects.get(code="admin"),
        org_unit=us.unit,
    )


def test_the_group_view_converts_at_the_rate_table_and_names_the_rates(group: None) -> None:
    from django.contrib.auth.models import User

    analyst = User.objects.get(username="group-analyst")
    report = group_report(actor=analyst, currency="CNY", table="G26", as_of=date(2026, 3, 31))
    rows = {c.code: c for c in report.companies}
    assert rows["CN01"].total == Decimal(50) and rows["CN01"].group_total == Decimal(50)
    assert rows["US01"].base_currency == "USD" and rows["US01"].total == Decimal(33)
    assert rows["US01"].group_total == Decimal("231.00")  # 33 × 7.0
    assert report.total == Decimal("281.00")
    assert report.rates_used == ["G26 2026-01-01 1 USD = 7.00000000 CNY"]
    later = group_report(actor=analyst, currency="CNY", table="G26", as_of=date(2026, 8, 1))
    assert {c.code: c.group_total for c in later.companies}["US01"] == Decimal("237.60")
    # A missing rate leaves the company out of the group totals and is named, not fatal.
    early = group_report(actor=analyst, currency="CNY", table="G26", as_of=date(2025, 12, 31))
    assert early.rates_missing == ["USD→CNY"] and not early.complete
    assert {c.code: c.rate for c in early.companies} == {"CN01": Decimal(1), "US01": None}
    assert early.total == Decimal(50) and early.rates_used == []
    none = group_report(actor=analyst, currency="CNY", table="NONE", as_of=date(2026, 3, 31))
    assert none.rates_missing == ["USD→CNY"]
    with pytest.raises(InvalidInput, match="not a 3-letter code"):
        group_report(actor=analyst, currency="cny", table="G26")


def test_a_viewer_of_one_company_sees_that_company_only(group: None) -> None:
    from django.contrib.auth.models import User

    us_only = User.objects.get(username="us-analyst")
    report = group_report(actor=us_only, currency="USD", table="G26", as_of=date(2026, 3, 31))
    assert [c.code for c in report.companies] == ["US01"]
    assert report.total == Decimal(33) and report.rates_used == []


def test_rates_are_set_by_policy_managers_and_audited(group: None) -> None:
    from django.contrib.auth.models import User

    us_only = User.objects.get(username="us-analyst")
    with pytest.raises(PermissionDenied):
        exchange_rate_set(
            actor=us_only, table="G26", currency="USD", to_currency="CNY",
            day=date(2026, 2, 1), rate=Decimal(8),
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="at most 8 decimals"):
        exchange_rate_set(
            actor=None, table="G26", currency="USD", to_currency="CNY",
            day=date(2026, 2, 1), rate=Decimal("0.000000001"),
        )  # fmt: skip
    assert AuditEvent.objects.filter(action=AuditAction.EXCHANGE_RATE_SET).count() == 2


def test_cli_rate_and_report(group: None) -> None:
    out = io.StringIO()
    call_command(
        "company", "rate", "G26", "--currency", "USD", "--to", "CNY", "--day", "2026-03-01",
        "--rate", "7.1", stdout=out,
    )  # fmt: skip
    call_command(
        "company", "report", "--currency", "CNY", "--rates", "G26", "--as-of", "2026-03-31",
        "--as", "group-analyst", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "US01\tSeattle Inc.\t1 documents (1 open)\ttotal 33.00 USD = 234.30 CNY" in text
    assert "group total 284.30 CNY" in text
    assert "rates used: G26 2026-03-01 1 USD = 7.10000000 CNY" in text
