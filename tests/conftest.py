"""Shared test setup: which database this pass runs on, and the data every test starts from."""

import os

import pytest
from django.db import connection


def _database_is_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL pass: fail (CI) or skip (developer without a server) when it does not answer.
    SQLite pass: skip the tests that need PostgreSQL."""
    if _database_is_postgres():
        problem = _postgres_problem()
        if problem is None:
            return
        if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
            raise pytest.UsageError(f"PostgreSQL is required but does not answer: {problem}")
        skip = pytest.mark.skip(reason=f"PostgreSQL not reachable ({problem})")
        for item in items:
            item.add_marker(skip)
        return
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL pass)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip_pg)


def _postgres_problem() -> str | None:
    import psycopg

    import dj_database_url

    cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
    try:
        psycopg.connect(
            host=cfg["HOST"] or "127.0.0.1", port=cfg["PORT"] or 5432, user=cfg["USER"],
            dbname=cfg["NAME"], connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
