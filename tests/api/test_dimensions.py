"""Close dimensions over the API: close and reopen one dimension, states on the line output,
refusals as domain errors (never a 500)."""

import pytest

from closeout.documents.models import EventKind
from tests.api.conftest import ApiFactory, error_of
from tests.factories import PO, Org, an_item, make_document, post

pytestmark = pytest.mark.django_db

DOC = "/api/documents/purchase_order"


def test_close_and_reopen_receiving(api_for: ApiFactory, org: Org) -> None:
    document = make_document(PO, org.dept_a, ((10, 5),), number="DM-1", item=an_item("DM-I"))
    post(document, EventKind.RECEIPT, 1, 7)
    api = api_for("supervisor")
    body = {"dimension": "receiving", "reason": "short_delivery_accepted", "line_nos": [1]}
    refused = api.post(f"{DOC}/DM-1/dimensions/close", body)
    assert refused.status_code == 422 and error_of(refused)["details"]["field"] == "remark"
    closed = api.post(f"{DOC}/DM-1/dimensions/close", {**body, "remark": "short for good"})
    assert closed.status_code == 200, closed.content
    assert closed.json()["released_qty"] == "3" or closed.json()["released_qty"].startswith("3")
    assert closed.json()["lines_closed"] == []
    detail = api.get(f"{DOC}/DM-1").json()
    assert detail["lines"][0]["dimensions"] == {
        "receiving": "closed",
        "invoicing": "open",
        "payment": "open",
    }
    assert detail["lines"][0]["close_state"] == "open"
    again = api.post(f"{DOC}/DM-1/dimensions/close", {**body, "remark": "x"})
    assert again.status_code == 422
    reopened = api.post(
        f"{DOC}/DM-1/dimensions/reopen",
        {"dimension": "receiving", "reason": "late_delivery", "line_nos": [1]},
    )
    assert reopened.status_code == 200, reopened.content
    assert api.get(f"{DOC}/DM-1").json()["lines"][0]["dimensions"]["receiving"] == "open"


def test_unknown_dimension_and_permission(api_for: ApiFactory, org: Org) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="DM-2")
    body = {"dimension": "collection", "reason": "completed", "remark": "x"}
    bad = api_for("supervisor").post(f"{DOC}/DM-2/dimensions/close", body)
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "dimension"
    denied = api_for("auditor").post(
        f"{DOC}/DM-2/dimensions/close", {**body, "dimension": "receiving"}
    )
    assert denied.status_code == 403
    missing = api_for("supervisor").post(f"{DOC}/NOPE/dimensions/close", body)
    assert missing.status_code == 404


def test_queue_filter_closed_for_receiving_invoicing_open(api_for: ApiFactory, org: Org) -> None:
    api = api_for("supervisor")
    for number in ("DM-Q1", "DM-Q2", "DM-Q3"):
        document = make_document(PO, org.dept_a, ((10, 5),), number=number)
        post(document, EventKind.RECEIPT, 1, 7)
        post(document, EventKind.INVOICE, 1, 7, 35)
    close = {"reason": "short_delivery_accepted", "remark": "short for good"}
    for number, dims in (("DM-Q1", ["receiving"]), ("DM-Q2", ["receiving", "invoicing"])):
        for dimension in dims:
            done = api.post(f"{DOC}/{number}/dimensions/close", {**close, "dimension": dimension})
            assert done.status_code == 200, done.content
    query = {"doc_type": PO, "closed_for": "receiving", "open_for": "invoicing"}
    numbers = [d["number"] for d in api.get("/api/documents", **query).json()["items"]]
    assert numbers == ["DM-Q1"]
    closed = api.get("/api/documents", doc_type=PO, closed_for="receiving").json()["items"]
    assert sorted(d["number"] for d in closed) == ["DM-Q1", "DM-Q2"]
    bad = api.get("/api/documents", doc_type=PO, closed_for="shipping")
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "dimension"
