"""The contract: OpenAPI, tokens, session with CSRF, JSON errors, size and rate limits."""

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from closeout.api import auth
from closeout.api.models import ApiToken
from closeout.api.services import api_token_create, token_hash
from tests.api.conftest import ONE_WINDOW_NOW, Api, ApiFactory, error_of, po_body
from tests.factories import Org, user_with_role

pytestmark = pytest.mark.django_db


def test_openapi_and_docs_are_served(client: Client) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/documents",
        "/api/documents/{doc_type}/{number}",
        "/api/events",
        "/api/requests/{request_id}/approve",
        "/api/batches/{job_id}/items",
        "/api/sweep/dry-run",
        "/api/audit/export",
        "/api/webhooks",
        "/api/policies/{doc_type}",
        "/api/reports/kpis",
        "/api/diagnostics",
        "/api/diagnostics/run",
        "/api/diagnostics/{check}",
        "/api/batches/{job_id}/verification",
        "/api/imports",
        "/api/imports/template",
        "/api/imports/{import_id}",
        "/api/imports/{import_id}/execute",
        "/api/archive/packs",
        "/api/archive/verify",
        "/api/archive/runs",
    ):
        assert path in spec["paths"], path
    assert client.get("/api/docs").status_code == 200


def test_no_token_bad_token_revoked_and_expired_are_401(api_for: ApiFactory, org: Org) -> None:
    anonymous = Api(Client(), None)
    response = anonymous.get("/api/documents", doc_type="purchase_order")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert (
        Api(Client(), "co_wrong").get("/api/documents", doc_type="purchase_order").status_code
        == 401
    )
    assert Api(Client(), "co_wrong").post("/api/events", {"events": [{}]}).status_code == 401

    api = api_for("operator")
    assert api.get("/api/documents", doc_type="purchase_order").status_code == 200
    token = ApiToken.objects.get(user=api.user)
    assert token.last_used_at is not None
    assert token.key_hash == token_hash(api.token or "") and api.token not in token.key_hash
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save()
    assert api.get("/api/documents", doc_type="purchase_order").status_code == 401
    token.expires_at, token.revoked_at = None, timezone.now()
    token.save()
    assert api.get("/api/documents", doc_type="purchase_order").status_code == 401


def test_token_command_creates_once_and_revokes(org: Org) -> None:
    user_with_role("cli-user", "operator", org.company)
    out, err = StringIO(), StringIO()
    call_command("token", "create", "cli-user", "--days", "3", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(key_hash=token_hash(raw))
    assert token.expires_at is not None and token.expires_at > timezone.now() + timedelta(days=2)
    assert "shown only now" in err.getvalue()
    api = Api(Client(), raw)
    assert api.get("/api/documents", doc_type="purchase_order").status_code == 200
    call_command("token", "revoke", str(token.pk), stdout=StringIO())
    assert api.get("/api/documents", doc_type="purchase_order").status_code == 401


def test_tokens_endpoint_creates_lists_and_revokes_own(api_for: ApiFactory) -> None:
    api = api_for("operator")
    response = api.post("/api/tokens", {"name": "script", "days": 5})
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("co_") and body["expires_at"]
    listed = api.get("/api/tokens").json()
    assert all("token" not in t for t in listed) and len(listed) == 2
    other = api_for("operator")
    assert other.post(f"/api/tokens/{body['id']}/revoke").status_code == 403
    assert api.post(f"/api/tokens/{body['id']}/revoke").json()["revoked_at"]


def test_session_auth_needs_csrf_on_writes(org: Org) -> None:
    user = user_with_role("web-user", "operator", org.company)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/documents", {"doc_type": "purchase_order"}).status_code == 200
    body = json.dumps({"name": "x"})
    response = client.post("/api/tokens", body, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in error_of(response)["message"]
    client.get("/admin/login/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        "/api/tokens", body, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert response.status_code == 201


def test_validation_errors_are_422_naming_the_field(integration: Api) -> None:
    response = integration.put(
        "/api/documents/purchase_order/PO-V1",
        po_body(lines=[{"line_no": 1, "planned_qty": 10.5, "unit_price": "1"}]),
    )
    assert response.status_code == 422
    body = error_of(response)
    assert body["details"]["field"] == "lines[0].planned_qty"
    assert "lines[0].planned_qty" in body["message"]
    response = integration.put("/api/documents/purchase_order/PO-V1", b"{not json")
    assert response.status_code in (400, 422)
    error_of(response)
    response = integration.get("/api/documents", doc_type="purchase_order", limit="lots")
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "limit"
    response = integration.get("/api/documents", doc_type="no_such_type")
    assert response.status_code in (403, 422)
    error_of(response)


def test_money_is_decimal_strings_and_times_have_offsets(integration: Api) -> None:
    integration.put("/api/documents/purchase_order/PO-D1", po_body())
    body = integration.get("/api/documents/purchase_order/PO-D1").json()
    assert body["total_amount"] == "455.0000"
    assert body["lines"][0]["unit_price"] == "5.500000"
    assert body["created_at"].endswith(("Z", "+00:00", "+08:00"))


def test_request_too_large_is_413(integration: Api, settings: Any) -> None:
    settings.CLOSEOUT_API_MAX_BODY_BYTES = 1000
    response = integration.post("/api/events", {"events": [{"note": "x" * 2000}]})
    assert response.status_code == 413
    body = error_of(response)
    assert body["code"] == "payload_too_large" and body["details"]["limit"] == 1000


def test_rate_limit_per_token_is_429_with_retry_after(
    api_for: ApiFactory, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One window for the whole test: at a minute's turn the fourth call would start a new one.
    monkeypatch.setattr(auth, "_clock", lambda: ONE_WINDOW_NOW)
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 3
    first, second = api_for("operator"), api_for("operator")
    for _ in range(3):
        assert first.get("/api/documents", doc_type="purchase_order").status_code == 200
    response = first.get("/api/documents", doc_type="purchase_order")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert error_of(response)["code"] == "rate_limited"
    # The limit is per token.
    assert second.get("/api/documents", doc_type="purchase_order").status_code == 200


def test_token_for_another_user_needs_access_manage(api_for: ApiFactory) -> None:
    operator = api_for("operator")
    admin = api_for("admin")
    from closeout.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        api_token_create(actor=operator.user, user=admin.user)
    assert api_token_create(actor=admin.user, user=operator.user).raw.startswith("co_")


def test_large_batch_within_the_api_limit_is_accepted(integration: Api) -> None:
    """Over Django's 2.5 MB form-upload default, under the API's own limit."""
    item = {
        "doc_type": "purchase_order",
        "number": "NOPE",
        "kind": "receipt",
        "external_id": "x",
        "note": "n" * 1900,
    }
    events = [{**item, "external_id": f"L-{i}"} for i in range(1600)]
    response = integration.post("/api/events", {"events": events})
    assert response.status_code == 200
    assert response.json()["counts"] == {"rejected": 1600}


def test_malformed_json_is_a_json_error(integration: Api) -> None:
    response = integration.post("/api/events", b'{"events": [')
    assert response.status_code in (400, 422)
    assert error_of(response)["code"] in ("invalid_input", "http_error")
