"""Bad input is a 422 naming the field, never a 500 (issue 12, section 4): numbers that do not
fit their columns, NUL characters, unbounded ages and periods, mistyped batch filters, digits
that are not ASCII, and bodies of the wrong shape."""

from typing import Any

import pytest

from closeout.batches.models import BatchJob
from tests.api.conftest import Api, ApiFactory, error_of, po_body
from tests.factories import PO, Org, ready_document

pytestmark = pytest.mark.django_db


def refused(response: Any, field: str, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = error_of(response)
    assert body["details"].get("field") == field, body
    return body


# --- numbers that do not fit their columns ---------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        # 9999999999999999 × 99999 is about 10^21: the amount overflows numeric(20, 4).
        ({"planned_qty": "9999999999999999", "unit_price": "99999"}, "lines[0].planned_qty"),
        ({"planned_qty": "1", "unit_price": "9999999999999999.9999"}, "lines[0].unit_price"),
        ({"planned_qty": "99999999999999999", "unit_price": "1"}, "lines[0].planned_qty"),
        ({"planned_qty": "1.00001", "unit_price": "1"}, "lines[0].planned_qty"),
        ({"planned_qty": "1", "unit_price": "1.0000001"}, "lines[0].unit_price"),
        (
            {"planned_qty": "1", "unit_price": "1", "planned_amount": "99999999999999999"},
            "lines[0].planned_amount",
        ),
    ],
)
def test_line_numbers_that_overflow_their_columns_are_refused(
    integration: Api, line: dict[str, str], field: str
) -> None:
    body = po_body(lines=[{"line_no": 1, **line}])
    refused(integration.put("/api/documents/purchase_order/PO-BIG", body), field)


def test_a_document_total_that_overflows_is_refused(integration: Api) -> None:
    # Each line fits on its own; their sum, or the sum at the rate, does not.
    line = {"planned_qty": "900000000000", "unit_price": "9000"}
    lines = [{"line_no": n, **line} for n in (1, 2)]
    refused(integration.put("/api/documents/purchase_order/PO-SUM", po_body(lines=lines)), "lines")
    one = [{"line_no": 1, "planned_qty": "1000000000000", "unit_price": "1"}]
    body = po_body(lines=one, currency="USD", exchange_rate="10000")
    refused(integration.put("/api/documents/purchase_order/PO-RATE", body), "exchange_rate")


def test_an_exchange_rate_that_overflows_is_refused(integration: Api) -> None:
    body = po_body(exchange_rate="9999999999999999")
    refused(integration.put("/api/documents/purchase_order/PO-RATE", body), "exchange_rate")


def test_the_largest_numbers_that_fit_are_stored(integration: Api) -> None:
    # (Whole numbers: SQLite keeps 16 significant digits of a fraction only approximately.)
    line = {"line_no": 1, "planned_qty": "9999999999999", "unit_price": "1000"}
    response = integration.put("/api/documents/purchase_order/PO-FIT", po_body(lines=[line]))
    assert response.status_code == 201, response.content
    assert response.json()["total_amount"] == "9999999999999000.0000"


def test_event_numbers_that_overflow_are_refused_per_item(integration: Api) -> None:
    integration.put("/api/documents/purchase_order/PO-EV", po_body())
    event = {"doc_type": PO, "number": "PO-EV", "kind": "receipt", "external_id": "E1"}
    response = integration.post(
        "/api/events", {"events": [{**event, "line_no": 1, "quantity": "99999999999999999"}]}
    )
    assert response.status_code == 200, response.content
    result = response.json()["results"][0]
    assert result["outcome"] == "rejected" and result["errors"][0]["field"] == "quantity"


def test_policy_numbers_that_overflow_are_refused(admin_api: Api) -> None:
    response = admin_api.patch("/api/policies/purchase_order", {"under_qty_pct": "10000"})
    refused(response, "under_qty_pct")


# --- NUL characters --------------------------------------------------------------------------


def test_nul_in_a_query_parameter_is_refused(integration: Api) -> None:
    body = refused(
        integration.get("/api/documents", doc_type="purchase_order", number="\x00"), "number"
    )
    assert body["code"] == "invalid_input"
    refused(integration.get("/api/archive/packs", period="2026-\x0003"), "period")


def test_nul_in_a_path_is_refused(integration: Api) -> None:
    response = integration.get("/api/documents/purchase_order/PO%00X")
    assert response.status_code in (404, 422), response.content
    error_of(response)


def test_nul_in_a_json_string_is_refused(org: Org, api_for: ApiFactory) -> None:
    document = ready_document(PO, org.dept_a)
    operator = api_for("operator")
    path = f"/api/documents/purchase_order/{document.number}/close"
    refused(operator.post(path, {"reason": "\u0000"}), "reason")
    refused(operator.post(path, {"reason": "completed", "remark": "a\u0000b"}), "remark")
    body = {"action": "close", "doc_type": PO, "numbers": ["X\u0000"], "reason": "completed"}
    refused(operator.post("/api/batches", body), "numbers[0]")
    refused(
        operator.post("/api/batches", {**body, "numbers": None, "filter": {"number": "\0"}}),
        "filter.number",
    )


# --- batch filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_", "field"),
    [
        ({"number": 123}, "filter.number"),
        ({"close_states": 5}, "filter.close_states"),
        ({"verdict": {"a": 1}}, "filter.verdict"),
        ({"verdict": "nice"}, "filter.verdict"),
        ({"min_age_days": 999999999}, "filter.min_age_days"),
        ({"min_age_days": -1}, "filter.min_age_days"),
        ({"min_age_days": True}, "filter.min_age_days"),
        ({"has_quarantined": "maybe"}, "filter.has_quarantined"),
        ({"date_from": "0001-01-01"}, "filter.date_from"),
        ({"colour": "red"}, "filter.colour"),
    ],
)
def test_batch_filters_of_the_wrong_type_are_refused(
    org: Org, api_for: ApiFactory, filter_: dict[str, Any], field: str
) -> None:
    ready_document(PO, org.dept_a)
    body = {"action": "close", "doc_type": PO, "filter": filter_, "reason": "completed"}
    refused(api_for("operator").post("/api/batches", body), field)
    assert not BatchJob.objects.exists()


def test_a_good_batch_filter_is_still_taken(org: Org, api_for: ApiFactory) -> None:
    ready_document(PO, org.dept_a)
    body = {
        "action": "close",
        "doc_type": PO,
        "filter": {"verdict": "ready", "close_states": ["open"], "min_age_days": 30},
        "reason": "completed",
    }
    response = api_for("operator").post("/api/batches", body)
    assert response.status_code == 201, response.content
    assert response.json()["total"] == 1
    assert BatchJob.objects.get().selection == {"filter": body["filter"]}


# --- periods ---------------------------------------------------------------------------------


def test_kpi_periods_outside_the_bounds_are_refused(api_for: ApiFactory) -> None:
    api = api_for("finance")
    response = api.get("/api/reports/kpis", date_from="0001-01-01", date_to="9999-12-31")
    refused(response, "date_from")
    refused(api.get("/api/reports/kpis", date_to="9999-12-31"), "date_to")
    refused(api.get("/api/reports/kpis", date_from="2026-02-01", date_to="2026-01-01"), "date_from")
    assert api.get("/api/reports/kpis", date_from="1990-01-01").status_code == 200


def test_archive_periods_outside_the_bounds_are_refused(api_for: ApiFactory) -> None:
    api = api_for("auditor")
    for period in ("9999-12", "0001-01", "1000-01-01..9999-12-31", "٢٠٢٦-٠٣", "２０２６-03"):
        refused(api.get("/api/archive/packs", period=period), "period")


# --- digits that are not ASCII ---------------------------------------------------------------


@pytest.mark.parametrize("digits", ["١٢", "１２", "۱۲"])
def test_digits_that_are_not_ascii_are_refused(integration: Api, digits: str) -> None:
    line = {"line_no": 1, "planned_qty": digits, "unit_price": "1"}
    refused(
        integration.put("/api/documents/purchase_order/PO-AR", po_body(lines=[line])),
        "lines[0].planned_qty",
    )
    refused(integration.get("/api/documents", doc_type="purchase_order", limit=digits), "limit")
    refused(integration.get("/api/documents", doc_type="purchase_order", cursor=digits), "cursor")
    refused(
        integration.put(
            "/api/documents/purchase_order/PO-AR",
            po_body(),
            headers={"If-Match": f'"{digits}"'},
        ),
        "If-Match",
        status=412,
    )


# --- bodies of the wrong shape ---------------------------------------------------------------


def test_a_list_body_is_refused_where_an_object_is_expected(org: Org, api_for: ApiFactory) -> None:
    api = api_for("admin")
    ready_document(PO, org.dept_a)
    # Every body whose fields all have defaults took a list for an object of defaults.
    for path in ("/api/sweep/dry-run", "/api/diagnostics/run", "/api/tokens"):
        response = api.post(path, [None, None])
        refused(response, "body")
    job = api.post(
        "/api/batches",
        {"action": "close", "doc_type": PO, "filter": {}, "reason": "completed"},
    ).json()
    refused(api.post(f"/api/batches/{job['id']}/start", [None, None]), "body")


def test_malformed_json_is_422_naming_the_body(integration: Api) -> None:
    refused(integration.put("/api/documents/purchase_order/PO-J", b"{not json"), "body")


def test_nul_in_one_event_rejects_that_event_only(integration: Api) -> None:
    integration.put("/api/documents/purchase_order/PO-NUL", po_body())
    event = {"doc_type": PO, "number": "PO-NUL", "kind": "receipt", "line_no": 1}
    response = integration.post(
        "/api/events",
        {
            "events": [
                {**event, "external_id": "E1", "quantity": "1", "note": "a\u0000b"},
                {**event, "external_id": "E2", "quantity": "1"},
            ]
        },
    )
    assert response.status_code == 200, response.content
    first, second = response.json()["results"]
    assert first["outcome"] == "rejected" and first["errors"][0]["field"] == "note"
    assert second["outcome"] == "applied"


def test_path_values_longer_than_their_column_are_refused(integration: Api) -> None:
    refused(integration.put(f"/api/partners/{'P' * 41}", {"name": "x"}), "code")
    refused(integration.put(f"/api/documents/purchase_order/{'N' * 61}", po_body()), "number")
