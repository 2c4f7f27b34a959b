"""API rate limits counted where every server process sees them (the database, or the shared
cache with CACHE_URL): per token, per signed-in user (the pages' own calls), and invalid tokens
per address; over the limit: 429 with the JSON error shape and Retry-After."""

import os
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from pytest_django.fixtures import Settings

from closeout.api import auth
from closeout.core.models import Counter
from tests.api.conftest import ONE_WINDOW_NOW, ApiFactory

LIST = "/api/documents"
REDIS_URL = os.environ.get("CLOSEOUT_TEST_CACHE_URL", "redis://127.0.0.1:6379/12")
NOW = ONE_WINDOW_NOW


@pytest.fixture(autouse=True)
def _one_window(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(auth, "_clock", lambda: NOW)
    settings.CLOSEOUT_COUNTERS = "database"


def call(client: Client, token: str | None = None, address: str = "198.51.100.1") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(LIST, {"doc_type": "purchase_order"}, headers=headers, REMOTE_ADDR=address)


def assert_429(response: Any, scope: str, limit: int) -> None:
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "rate_limited"
    assert body["details"]["scope"] == scope and body["details"]["limit"] == limit
    assert int(response["Retry-After"]) == 60 - 7 == body["details"]["retry_after"]


def test_a_token_limit_of_n_allows_exactly_n_across_processes(
    api_for: ApiFactory, settings: Settings
) -> None:
    """Two clients (two workers), the process's own cache emptied between them: the count is
    the database's, so exactly N calls pass."""
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 5
    token = api_for("operator").token
    first, second = Client(), Client()
    statuses = [call(first, token).status_code for _ in range(3)]
    caches["default"].clear()
    statuses += [call(second, token).status_code for _ in range(4)]
    assert statuses == [200] * 5 + [429] * 2
    assert_429(call(second, token), "token", 5)
    (row,) = Counter.objects.filter(key__startswith="api-rate:token:")
    assert row.value == 8


def test_the_shared_cache_counts_for_separate_clients(
    api_for: ApiFactory, settings: Settings
) -> None:
    """With CACHE_URL (Redis): two separate cache clients, as two processes have, share one
    count."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required but does not answer: {exc}")
        pytest.skip(f"Redis not reachable ({exc})")
    backend = "django.core.cache.backends.redis.RedisCache"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "worker-1": {"BACKEND": backend, "LOCATION": REDIS_URL},
        "worker-2": {"BACKEND": backend, "LOCATION": REDIS_URL},
    }
    settings.CLOSEOUT_COUNTERS = "cache"
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 5
    token = api_for("operator").token
    statuses = []
    for worker, calls in (("worker-1", 3), ("worker-2", 4)):
        settings.CLOSEOUT_COUNTERS_CACHE = worker
        statuses += [call(Client(), token).status_code for _ in range(calls)]
    assert statuses == [200] * 5 + [429] * 2
    assert caches["worker-1"] is not caches["worker-2"]
    assert not Counter.objects.exists()


def test_session_calls_are_limited_per_user(api_for: ApiFactory, settings: Settings) -> None:
    settings.CLOSEOUT_API_SESSION_RATE_PER_MINUTE = 3
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100
    pages, other = Client(), Client()
    pages.force_login(api_for("operator").user)
    other.force_login(api_for("operator").user)
    assert [call(pages).status_code for _ in range(3)] == [200, 200, 200]
    assert_429(call(pages), "session", 3)
    assert call(other).status_code == 200


def test_invalid_tokens_are_limited_per_address(api_for: ApiFactory, settings: Settings) -> None:
    settings.CLOSEOUT_API_INVALID_TOKEN_RATE_PER_MINUTE = 3
    good = api_for("operator")
    guesser = Client()
    guesses = [call(guesser, f"co_guess{n}", "203.0.113.7").status_code for n in range(3)]
    assert guesses == [401, 401, 401]
    assert_429(call(guesser, "co_guess-4", "203.0.113.7"), "invalid_token", 3)
    # Once over the limit, no bearer call from that address is looked at (no oracle) ...
    assert_429(call(Client(), good.token, "203.0.113.7"), "invalid_token", 3)
    # ... while other addresses are unaffected.
    assert call(Client(), good.token, "203.0.113.8").status_code == 200
    assert call(Client(), "co_wrong", "203.0.113.8").status_code == 401
