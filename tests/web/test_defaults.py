"""Production-safe defaults of the pages: CSP, no caching, session lifetime; ISO dates in every
date input and reasons the user must choose, in Chinese first."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from closeout.documents.models import CloseState, Document
from tests.factories import Org
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)


def test_pages_send_the_csp_and_are_never_cached(operator: User, ready_po: Document) -> None:
    client = signed_in(operator)
    for path in ("/queue/purchase_order/", f"/documents/{ready_po.pk}/", "/login/"):
        response = client.get(path)
        assert set(response["Content-Security-Policy"].split("; ")) == set(CSP.split("; ")), path
        assert "no-store" in response["Cache-Control"], path
    page = client.get("/queue/purchase_order/").content.decode()
    assert "onclick" not in page and "style=" not in page and "<script>" not in page
    assert '<script src="/static/web/closeout.js" defer></script>' in page


def test_api_responses_are_never_cached(operator: User) -> None:
    response = signed_in(operator).get("/api/documents", {"doc_type": "purchase_order"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_a_session_lasts_eight_hours(operator: User, settings: Any) -> None:
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    client = Client()
    response = client.post("/login/", {"username": "op", "password": "x-test-only"})
    assert response.status_code == 302
    assert client.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 8 * 3600


def test_chinese_date_inputs_carry_iso_values(operator: User, ready_po: Document) -> None:
    client = signed_in(operator, "zh-hans")
    today = timezone.localdate().isoformat()
    close = client.get(f"/documents/{ready_po.pk}/close/").content.decode()
    assert f'type="date" name="close_date" value="{today}"' in close
    assert "/" not in today
    batch = client.post(
        "/batches/new/", {"doc_type": "purchase_order", "numbers": [ready_po.number]}
    ).content.decode()
    assert f'type="date" name="close_date" value="{today}"' in batch
    queue = client.get("/queue/purchase_order/", {"date_from": "2026-01-05"}).content.decode()
    assert 'type="date" name="date_from" value="2026-01-05"' in queue


def test_chinese_close_keeps_its_iso_date_and_succeeds(operator: User, ready_po: Document) -> None:
    client = signed_in(operator, "zh-hans")
    today = timezone.localdate().isoformat()
    response = client.post(
        f"/documents/{ready_po.pk}/close/",
        {"reason": "completed", "close_date": today, "submit_as": "direct"},
    )
    assert response.status_code == 302
    ready_po.refresh_from_db()
    assert ready_po.close_state == CloseState.CLOSED


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ("close", "请选择结案原因。"),
        ("reopen", "请选择反结案原因。"),
        ("batch", "请选择结案原因。"),
    ],
)
def test_a_reason_must_be_chosen(
    org: Org, supervisor: User, ready_po: Document, form: str, message: str
) -> None:
    client = signed_in(supervisor, "zh-hans")
    today = timezone.localdate().isoformat()
    if form == "reopen":
        ready_po.close_state = CloseState.CLOSED
        ready_po.save(update_fields=["close_state"])
    paths = {
        "close": f"/documents/{ready_po.pk}/close/",
        "reopen": f"/documents/{ready_po.pk}/reopen/",
        "batch": "/batches/new/",
    }
    shown = client.get(paths[form]) if form != "batch" else None
    if shown is not None:
        assert '<option value="" selected>请选择…</option>' in shown.content.decode()
    data = {"reason": "", "remark": "x", "close_date": today, "submit_as": "direct"}
    data |= {"doc_type": "purchase_order", "numbers": ready_po.number}
    response = client.post(paths[form], data)
    # The batch page answers a refused form with 400 (as it does a bad queue filter).
    assert response.status_code == (400 if form == "batch" else 200)
    assert message in response.content.decode()
    ready_po.refresh_from_db()
    assert ready_po.close_state == (CloseState.CLOSED if form == "reopen" else CloseState.OPEN)
