"""Cross-company scope: a user granted on company A (even as administrator) reaches nothing of
company B through the API or the pages, although both hold the same document number: every
call out of scope answers like a missing document (0 successes out of scope)."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from closeout.access.companies import company_create
from closeout.api.services import api_token_create
from closeout.core.services import org_unit_create
from closeout.documents.models import Document
from tests.api.conftest import Api
from tests.factories import PO, complete, make_document, user_with_role

pytestmark = pytest.mark.django_db

NUMBER = "PO-SAME-1"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000


@pytest.fixture
def world() -> dict[str, Any]:
    a = company_create(actor=None, code="CO-A", name="甲公司", currency="CNY")
    b = company_create(actor=None, code="CO-B", name="乙公司", currency="USD")
    dept_a = org_unit_create(code="CO-A-P", name="采购", parent=a.unit)
    dept_b = org_unit_create(code="CO-B-P", name="Purchasing", parent=b.unit)
    admin_a = user_with_role("admin-a", "admin", a.unit)
    return {
        "mine": complete(make_document(PO, dept_a, number=NUMBER)),
        "theirs": complete(make_document(PO, dept_b, number=NUMBER)),
        "only_theirs": complete(make_document(PO, dept_b, number="PO-B-ONLY")),
        "api": Api(Client(), api_token_create(actor=None, user=admin_a, name="t").raw, admin_a),
        "admin_a": admin_a,
    }


DOCUMENT_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("GET", "/checklist", None),
    ("GET", "/audit", None),
    ("POST", "/close", {"reason": "completed"}),
    ("POST", "/close-requests", {"reason": "completed"}),
    ("POST", "/reopen-requests", {"reason": "wrong_close", "remark": "x"}),
]


def _call(api: Api, method: str, path: str, body: dict[str, Any] | None) -> int:
    if method == "GET":
        return int(api.get(path).status_code)
    return int(api.post(path, body).status_code)


def test_api_out_of_scope_every_document_call_answers_404(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    answers = []
    for number, query in (
        (NUMBER, "?company=CO-B"),
        ("PO-B-ONLY", ""),
        ("PO-B-ONLY", "?company=CO-B"),
    ):
        for method, tail, body in DOCUMENT_CALLS:
            path = f"/api/documents/{PO}/{number}{tail}{query}"
            answers.append((method, path, _call(api, method, path, body)))
    successes = [a for a in answers if a[2] < 300]
    assert successes == [] and {a[2] for a in answers} == {404}, answers
    theirs = Document.objects.get(pk=world["theirs"].pk)
    assert theirs.close_state == "open" and theirs.version == world["theirs"].version


def test_api_lists_and_events_stay_inside_the_company(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    listed = api.get("/api/documents", doc_type=PO, limit=500).json()["items"]
    assert {d["org_unit"] for d in listed} == {"CO-A-P"}
    # Without a company the one number the caller sees is theirs: company A's.
    assert api.get(f"/api/documents/{PO}/{NUMBER}").json()["org_unit"] == "CO-A-P"
    posted = api.post(
        "/api/events",
        {"events": [{"doc_type": PO, "number": NUMBER, "company": "CO-B", "kind": "receipt",
                     "external_id": "GR-X", "line_no": 1, "quantity": "1"}]},
    ).json()  # fmt: skip
    assert posted["results"][0]["outcome"] == "rejected"
    assert posted["results"][0]["code"] == "not_found"
    body = {
        "org_unit": "CO-B-P",
        "document_date": "2026-01-05",
        "lines": [{"line_no": 1, "planned_qty": "1", "unit_price": "1"}],
    }
    assert api.put(f"/api/documents/{PO}/NEW-IN-B", body).status_code == 403
    assert not Document.objects.filter(number="NEW-IN-B").exists()


def test_pages_out_of_scope_answer_404(world: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world["admin_a"])
    theirs = world["theirs"]
    answers = [
        client.get(reverse("web:document", args=[theirs.pk])).status_code,
        client.get(reverse("web:close", args=[theirs.pk])).status_code,
        client.post(reverse("web:close", args=[theirs.pk]), {"reason": "completed"}).status_code,
        client.post(reverse("web:reopen", args=[theirs.pk]), {"reason": "x"}).status_code,
    ]
    assert answers == [404, 404, 404, 404]
    queue = client.get(reverse("web:queue", args=[PO])).content.decode()
    assert "CO-A-P" in queue or NUMBER in queue
    assert "PO-B-ONLY" not in queue and "CO-B-P" not in queue
    mine = client.get(reverse("web:document", args=[world["mine"].pk]))
    assert mine.status_code == 200
