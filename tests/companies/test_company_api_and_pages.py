"""Several companies in the API and the workbench: every document representation names its
company; the group view (API and page 报表 → 集团汇总) is scoped to the caller's companies and
names the rates used and missing; the companies and exchange-rate pages of 设置 call their
services (permission, audit)."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.api.services import api_token_create
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.models import Company, ExchangeRate
from closeout.reports.group import exchange_rate_set
from tests.api.conftest import Api
from tests.companies.conftest import two_companies
from tests.factories import PO, complete, make_document, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000


def _api(user: User) -> Api:
    return Api(Client(), api_token_create(actor=None, user=user, name="t").raw, user)


@pytest.fixture
def world() -> dict[str, Any]:
    cn, us, cn_dept, us_dept = two_companies()
    complete(make_document(PO, cn_dept, ((10, 5),), number="PO-1"))  # 50 CNY
    make_document(PO, us_dept, ((3, 10),), number="PO-1")  # 30 USD
    exchange_rate_set(
        actor=None, table="G26", currency="USD", to_currency="CNY",
        day=date(2026, 1, 1), rate=Decimal("7.1"),
    )  # fmt: skip
    both = user_with_role("both", "admin", cn.unit)
    grant_create(actor=None, user=both, role=Role.objects.get(code="admin"), org_unit=us.unit)
    return {
        "cn": cn,
        "us": us,
        "cn_dept": cn_dept,
        "us_dept": us_dept,
        "both": both,
        "cn_only": user_with_role("cn-only", "admin", cn.unit),
        "nobody": user_with_role("nobody", None),
    }


def test_document_representations_carry_the_company_code(world: dict[str, Any]) -> None:
    api = _api(world["both"])
    listed = api.get("/api/documents", doc_type=PO).json()["items"]
    assert sorted((d["number"], d["company"]) for d in listed) == [
        ("PO-1", "CN01"),
        ("PO-1", "US01"),
    ]
    one = api.get(f"/api/documents/{PO}/PO-1", company="US01").json()
    assert one["company"] == "US01" and one["org_unit"] == "US01-P"
    body = {
        "org_unit": "US01-P",
        "document_date": "2026-02-01",
        "currency": "USD",
        "lines": [{"line_no": 1, "planned_qty": "2", "unit_price": "3"}],
    }
    put = api.put(f"/api/documents/{PO}/PO-2", body)
    assert put.status_code == 201 and put.json()["company"] == "US01"
    bulk = api.post(
        "/api/documents/bulk", {"documents": [{**body, "doc_type": PO, "number": "PO-3"}]}
    ).json()
    assert bulk["results"][0]["outcome"] == "created"
    assert bulk["results"][0]["company"] == "US01"
    request = api.post(
        f"/api/documents/{PO}/PO-1/close-requests?company=CN01",
        {"reason": "completed"},
    )
    assert request.status_code == 201, request.json()
    assert request.json()["company"] == "CN01"


def test_the_list_names_companies_without_a_query_per_document(
    world: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    for n in range(8):
        make_document(PO, world["us_dept"], number=f"PO-Q{n}")
    api = _api(world["both"])
    api.get("/api/documents", doc_type=PO)  # warm the caches (token, grants)
    with django_assert_max_num_queries(14):
        items = api.get("/api/documents", doc_type=PO).json()["items"]
    assert {d["company"] for d in items} == {"CN01", "US01"}


def test_group_api_is_scoped_and_names_rates(world: dict[str, Any]) -> None:
    both = _api(world["both"]).get(
        "/api/reports/group", currency="CNY", rates="G26", as_of="2026-03-31"
    )
    assert both.status_code == 200
    body = both.json()
    rows = {c["code"]: c for c in body["companies"]}
    assert rows["US01"]["total"] == "30.00" and rows["US01"]["group_total"] == "213.00"
    assert rows["CN01"]["group_total"] == "50.00" and body["total"] == "263.00"
    assert body["rates_used"] == ["G26 2026-01-01 1 USD = 7.10000000 CNY"]
    assert body["rates_missing"] == []
    in_eur = _api(world["both"]).get("/api/reports/group", currency="EUR", rates="G26").json()
    assert in_eur["rates_missing"] == ["CNY→EUR", "USD→EUR"] and in_eur["total"] == "0"
    # A user of one company sees that company only: 0 successes out of scope.
    cn_only = _api(world["cn_only"]).get("/api/reports/group", currency="CNY", rates="G26")
    assert [c["code"] for c in cn_only.json()["companies"]] == ["CN01"]
    assert "US01" not in cn_only.content.decode()
    assert (
        _api(world["nobody"]).get("/api/reports/group", currency="CNY", rates="G").status_code
        == 403
    )
    bad = _api(world["both"]).get("/api/reports/group", currency="yen", rates="G26")
    assert bad.status_code == 422 and bad.json()["details"]["field"] == "currency"


def _client(user: User, language: str = "zh-hans") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_group_page_shows_the_companies_of_the_user(world: dict[str, Any]) -> None:
    url = reverse("web:group")
    page = _client(world["both"]).get(url, {"currency": "CNY", "rates": "G26"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "集团汇总" in text and "US01" in text and "CN01" in text
    assert "G26 2026-01-01 1 USD = 7.10000000 CNY" in text and "263.00" in text
    missing = _client(world["both"]).get(url, {"currency": "EUR", "rates": "G26"})
    assert 'id="rates-missing"' in missing.content.decode()
    mine = _client(world["cn_only"]).get(url, {"currency": "CNY", "rates": "G26"})
    assert "US01" not in mine.content.decode() and "CN01" in mine.content.decode()
    assert _client(world["nobody"]).get(url).status_code == 403
    reports = _client(world["both"]).get(reverse("web:reports")).content.decode()
    assert url in reports


def test_companies_page_lists_and_creates_through_the_service(world: dict[str, Any]) -> None:
    url = reverse("web:config_companies")
    client = _client(world["both"])
    page = client.get(url)
    assert page.status_code == 200 and "Seattle Inc." in page.content.decode()
    created = client.post(
        url,
        {"code": "DE01", "name": "Berlin GmbH", "currency": "eur",
         "time_zone": "Europe/Berlin", "fiscal_year_start_month": "4"},
    )  # fmt: skip
    assert created.status_code == 302
    company = Company.objects.select_related("unit").get(unit__code="DE01")
    assert (company.base_currency, company.time_zone, company.fiscal_year_start_month) == (
        "EUR",
        "Europe/Berlin",
        4,
    )
    event = AuditEvent.objects.filter(action=AuditAction.COMPANY_CREATED).latest("seq")
    assert event.actor_id == world["both"].pk and event.data["code"] == "DE01"
    taken = client.post(url, {"code": "DE01", "name": "x", "currency": "EUR",
                              "fiscal_year_start_month": "1"})  # fmt: skip
    assert taken.status_code == 400 and "DE01" in taken.content.decode()
    # A company-wide right is needed: an administrator of one company may not add companies.
    refused = _client(world["cn_only"]).post(
        url, {"code": "FR01", "name": "Paris", "currency": "EUR", "fiscal_year_start_month": "1"}
    )
    assert refused.status_code in (400, 403)
    assert not Company.objects.filter(unit__code="FR01").exists()


def test_rates_page_lists_and_sets_through_the_service(world: dict[str, Any]) -> None:
    url = reverse("web:config_rates")
    client = _client(world["both"], "en")
    assert "7.10000000" in client.get(url).content.decode()
    saved = client.post(
        url,
        {"table": "G26", "currency": "usd", "to_currency": "CNY", "day": "2026-07-01",
         "rate": "7.2"},
    )  # fmt: skip
    assert saved.status_code == 302
    assert ExchangeRate.objects.get(table="G26", day=date(2026, 7, 1)).rate == Decimal("7.2")
    assert AuditEvent.objects.filter(action=AuditAction.EXCHANGE_RATE_SET).count() == 2
    bad = client.post(
        url,
        {"table": "G26", "currency": "USD", "to_currency": "CNY", "day": "2026-07-02",
         "rate": "-1"},
    )  # fmt: skip
    assert bad.status_code == 400 and "must be above 0" in bad.content.decode()
