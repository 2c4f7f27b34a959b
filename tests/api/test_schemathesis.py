"""Generated requests from our own OpenAPI (schemathesis), valid and invalid, against every
operation: never a 5xx, never a status the operation does not document, and every response
matches the schema (and media type) it documents.

Bounded so that it runs in every `make test` pass: a fixed number of examples per operation
(CLOSEOUT_SCHEMATHESIS_EXAMPLES, default 20), no shrinking beyond what hypothesis needs to show
a failure. No per-example deadline: a timing assertion fails on a loaded machine; the test's
pytest timeout bounds the run instead. The summary (operations, calls, failures) is printed
at the end of the run (tests/api/conftest.py)."""

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from django.core import signals  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

from closeout.api.services import api_token_create  # noqa: E402
from tests.factories import PO, org_tree, ready_document, user_with_role  # noqa: E402

EXAMPLES = int(os.environ.get("CLOSEOUT_SCHEMATHESIS_EXAMPLES", "20"))

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
checks = schemathesis.checks
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]

# Filled as the tests run; printed by the terminal summary hook in tests/api/conftest.py.
SUMMARY: Counter[str] = Counter()


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
def admin_token(db: None, settings: Any, _keep_test_connection: None) -> Iterator[str]:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 1_000_000
    settings.CLOSEOUT_API_SESSION_RATE_PER_MINUTE = 1_000_000
    settings.CLOSEOUT_API_INVALID_TOKEN_RATE_PER_MINUTE = 1_000_000
    org = org_tree()
    ready_document(PO, org.dept_a, number="FUZZ-1")
    user = user_with_role("fuzz-admin", "admin", org.company)
    SUMMARY["operations"] += 1
    failed_before = SUMMARY["failed calls"]
    yield api_token_create(actor=None, user=user).raw
    SUMMARY["failed operations"] += SUMMARY["failed calls"] > failed_before


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms(case: Any, admin_token: str) -> None:
    SUMMARY["calls"] += 1
    try:
        case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)
    except BaseException:
        SUMMARY["failed calls"] += 1
        raise
