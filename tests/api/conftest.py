"""API test helpers: a client that sends a bearer token, and users with tokens per role."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from closeout.api.services import api_token_create
from tests.factories import Org, user_with_role


class Api:
    """JSON calls with `Authorization: Bearer <token>`."""

    def __init__(self, client: Client, token: str | None, user: User | None = None) -> None:
        self.client, self.token, self.user = client, token, user

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        result = dict(headers or {})
        if self.token is not None:
            result.setdefault("Authorization", f"Bearer {self.token}")
        return result

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(path, params, headers=self._headers(headers))

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        data = (
            body if isinstance(body, bytes | str) else json.dumps(body if body is not None else {})
        )
        call = getattr(self.client, method.lower())
        return call(
            path, data=data, content_type="application/json", headers=self._headers(headers)
        )

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.send("POST", path, body, headers)

    def put(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.send("PUT", path, body, headers)

    def patch(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.send("PATCH", path, body, headers)


ApiFactory = Callable[..., Api]

# A moment well inside one minute of the API's rate-limit windows, so that a test pinning the
# clock to it (`closeout.api.auth._clock`) never straddles two windows.
ONE_WINDOW_NOW = 60 * 31_666_667 + 7.0


@pytest.fixture
def api_for(db: None, org: Org) -> ApiFactory:
    """api_for("operator") → an Api for a new user with that role over the company."""
    count = {"n": 0}

    def make(role: str | None, *, unit: Any = None, username: str | None = None) -> Api:
        count["n"] += 1
        name = username or f"{role or 'nobody'}-{count['n']}"
        user = (
            user_with_role(name, role, unit or org.company) if role else user_with_role(name, None)
        )
        token = api_token_create(actor=None, user=user, name="test").raw
        return Api(Client(), token, user)

    return make


@pytest.fixture
def integration(api_for: ApiFactory) -> Api:
    return api_for("integration")


@pytest.fixture
def admin_api(api_for: ApiFactory) -> Api:
    return api_for("admin")


@pytest.fixture(autouse=True)
def _api_defaults(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000
    settings.CLOSEOUT_API_SESSION_RATE_PER_MINUTE = 100_000


def po_body(org_code: str = "D-A", lines: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "org_unit": org_code,
        "document_date": "2026-01-10",
        "source_system": "erp",
        "lines": lines
        if lines is not None
        else [
            {"line_no": 1, "planned_qty": "10", "unit_price": "5.50", "item": "BOLT-1"},
            {"line_no": 2, "planned_qty": "4", "unit_price": "100"},
        ],
        **extra,
    }


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    return body  # type: ignore[no-any-return]


def download(response: Any) -> bytes:
    """The body of a plain, streamed or file response."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def upload(api: Api, path: str, field: str, name: str, content: bytes, **headers: str) -> Any:
    """A multipart POST of one file, with the bearer token."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return api.client.post(
        path, {field: SimpleUploadedFile(name, content)}, headers=api._headers(headers or None)
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The schemathesis run in numbers, when it ran (tests/api/test_schemathesis.py)."""
    import sys

    module = sys.modules.get("tests.api.test_schemathesis")
    summary = getattr(module, "SUMMARY", None)
    if not summary or not summary["operations"]:
        return
    terminalreporter.write_line(
        f"schemathesis: {summary['operations']} operations, {summary['calls']} calls, "
        f"{summary['failed operations']} operations failed ({summary['failed calls']} failing "
        "calls)"
    )
