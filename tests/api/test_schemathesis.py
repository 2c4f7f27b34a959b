"""Generated requests from our own OpenAPI (schemathesis): never a 5xx, and every response
matches the schema it documents. A bounded number of examples per operation."""

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from django.core import signals  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from closeout.api.services import api_token_create  # noqa: E402
from tests.factories import PO, org_tree, ready_document, user_with_role  # noqa: E402

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
checks = schemathesis.checks
CHECKS = [checks.not_a_server_error, checks.response_schema_conformance]


@pytest.fixture
def _keep_test_connection() -> Iterator[None]:
    """Django's own test client does the same: a request must not close the connection that
    holds the test's transaction (schemathesis calls the WSGI app directly)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(db: None, settings: Any, _keep_test_connection: None) -> str:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 1_000_000
    settings.CLOSEOUT_API_SESSION_RATE_PER_MINUTE = 1_000_000
    settings.CLOSEOUT_API_INVALID_TOKEN_RATE_PER_MINUTE = 1_000_000
    org = org_tree()
    ready_document(PO, org.dept_a, number="FUZZ-1")
    user = user_with_role("fuzz-admin", "admin", org.company)
    return api_token_create(actor=None, user=user).raw


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case: Any, admin_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)
