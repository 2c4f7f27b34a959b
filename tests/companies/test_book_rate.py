"""A document in another currency than its company's base currency, sent without a rate, takes
the book rate table's rate of its document date (API upsert, bulk, service); without one it is
refused naming the document, the currency and the date."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from closeout.access.companies import company_create
from closeout.api.services import api_token_create
from closeout.core.errors import InvalidInput
from closeout.core.services import org_unit_create
from closeout.documents.models import Document
from closeout.documents.services import LineInput, document_upsert
from closeout.reports.group import exchange_rate_set
from tests.api.conftest import Api
from tests.factories import PO, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000
    settings.CLOSEOUT_BOOK_RATE_TABLE = "BOOK"


@pytest.fixture
def api() -> Api:
    cn = company_create(actor=None, code="CN01", name="上海公司", currency="CNY")
    org_unit_create(code="CN01-P", name="采购", parent=cn.unit)
    for day, rate in ((date(2026, 1, 1), "7.0"), (date(2026, 2, 1), "7.2")):
        exchange_rate_set(
            actor=None, table="BOOK", currency="USD", to_currency="CNY", day=day,
            rate=Decimal(rate),
        )  # fmt: skip
    user = user_with_role("erp", "integration", cn.unit)
    return Api(Client(), api_token_create(actor=None, user=user, name="t").raw, user)


def _body(currency: str, day: str, **more: Any) -> dict[str, Any]:
    return {
        "org_unit": "CN01-P",
        "document_date": day,
        "currency": currency,
        "lines": [{"line_no": 1, "planned_qty": "10", "unit_price": "3"}],
        **more,
    }


def test_the_rate_of_the_document_date_is_taken_from_the_book_table(api: Api) -> None:
    put = api.put(f"/api/documents/{PO}/PO-JAN", _body("USD", "2026-01-20"))
    assert put.status_code == 201, put.json()
    assert put.json()["exchange_rate"] == "7.00000000"
    assert put.json()["total_amount_company"] == "210.0000"
    feb = api.put(f"/api/documents/{PO}/PO-FEB", _body("USD", "2026-02-01")).json()
    assert feb["exchange_rate"] == "7.20000000"
    # A rate sent by the ERP wins; the base currency needs none.
    sent = api.put(f"/api/documents/{PO}/PO-SENT", _body("USD", "2026-01-20", exchange_rate="6.9"))
    assert sent.json()["exchange_rate"] == "6.90000000"
    cny = api.put(f"/api/documents/{PO}/PO-CNY", _body("CNY", "2025-01-01")).json()
    assert Decimal(cny["exchange_rate"]) == 1


def test_a_missing_rate_is_refused_naming_document_currency_and_date(api: Api) -> None:
    refused = api.put(f"/api/documents/{PO}/PO-OLD", _body("USD", "2025-12-31"))
    assert refused.status_code == 422
    body = refused.json()
    assert "PO-OLD" in body["message"] and "USD" in body["message"]
    assert "2025-12-31" in body["message"] and "BOOK" in body["message"]
    assert body["details"]["field"] == "exchange_rate"
    assert "采购订单 PO-OLD" in body["details"]["message_zh"]
    eur = api.put(f"/api/documents/{PO}/PO-EUR", _body("EUR", "2026-03-01"))
    assert eur.status_code == 422 and "EUR" in eur.json()["message"]
    assert not Document.objects.filter(number__in=["PO-OLD", "PO-EUR"]).exists()


def test_bulk_takes_the_rate_per_item_and_refuses_only_the_one_without(api: Api) -> None:
    answer = api.post(
        "/api/documents/bulk",
        {
            "documents": [
                {**_body("USD", "2026-01-05"), "doc_type": PO, "number": "PO-B1"},
                {**_body("USD", "2025-06-05"), "doc_type": PO, "number": "PO-B2"},
                {**_body("USD", "2026-02-05"), "doc_type": PO, "number": "PO-B3"},
            ]
        },
    ).json()
    outcomes = [r["outcome"] for r in answer["results"]]
    assert outcomes == ["created", "rejected", "created"]
    assert "2025-06-05" in answer["results"][1]["reason"]
    rates = dict(Document.objects.values_list("number", "exchange_rate"))
    assert rates == {"PO-B1": Decimal("7.0"), "PO-B3": Decimal("7.2")}


def test_the_service_without_a_rate_refuses_too(api: Api) -> None:
    unit = org_unit_create(code="CN01-Q", name="仓库", parent=None)
    with pytest.raises(InvalidInput, match="came without an exchange rate"):
        document_upsert(
            actor=None, doc_type=PO, number="PO-S", org_unit=unit,
            document_date=date(2026, 1, 1), currency="JPY",
            lines=[LineInput(line_no=1, planned_qty=Decimal(1), unit_price=Decimal(1))],
        )  # fmt: skip
