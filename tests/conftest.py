"""Shared test setup: which database this pass runs on, and the data every test starts from."""

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

from tests.factories import Org, org_tree, user_with_role


def _database_is_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL pass: fail (CI) or skip (developer without a server) when it does not answer.
    SQLite pass: skip the tests that need PostgreSQL."""
    if _database_is_postgres():
        problem = _postgres_problem()
        if problem is None:
            _skip_browser_tests_that_ran(items)
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


def _skip_browser_tests_that_ran(items: list[pytest.Item]) -> None:
    """`make test` runs both passes side by side and the browser tests once, in the SQLite pass
    (CLOSEOUT_BROWSER_TESTS_RAN=sqlite): they drive pages whose database work the rest of this
    pass already covers, and each one starts a browser and a live server."""
    if os.environ.get("CLOSEOUT_BROWSER_TESTS_RAN") != "sqlite":
        return
    ran = pytest.mark.skip(reason="browser test: ran in the SQLite pass of this `make test`")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(ran)


def _postgres_problem() -> str | None:
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
    try:
        psycopg.connect(
            host=cfg["HOST"] or "127.0.0.1",
            port=cfg["PORT"] or 5432,
            user=cfg["USER"],
            # The server's maintenance database: pytest-django creates test_<NAME> from there,
            # so <NAME> itself need not exist.
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- the audit key and checkpoints: never the developer's var/ -------------------------------


@pytest.fixture(scope="session", autouse=True)
def _audit_key_outside_var(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One audit key file for the run, created on first use like on a fresh install; and on
    SQLite, test teardown's flush (DELETE FROM every table) passes the audit triggers as
    PostgreSQL's TRUNCATE does."""
    from django.conf import settings

    from closeout.audit.services import sqlite_audit_guards_lifted

    keys = tmp_path_factory.mktemp("audit-keys") / "audit-keys.json"
    saved = {
        name: getattr(settings, name) for name in ("CLOSEOUT_AUDIT_KEY", "CLOSEOUT_AUDIT_KEY_FILE")
    }
    settings.CLOSEOUT_AUDIT_KEY = ""
    settings.CLOSEOUT_AUDIT_KEY_FILE = keys
    operations = type(connection.ops)
    flush = operations.execute_sql_flush
    if connection.vendor == "sqlite":

        def execute_sql_flush(self: Any, sql_list: list[str]) -> None:
            with sqlite_audit_guards_lifted(self.connection):
                flush(self, sql_list)

        operations.execute_sql_flush = execute_sql_flush
    yield
    operations.execute_sql_flush = flush
    for name, value in saved.items():
        setattr(settings, name, value)


@pytest.fixture(autouse=True)
def _audit_checkpoints_per_test(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test its own checkpoint file (the database is rolled back after each test: the
    checkpoints of one test's chain would read as a truncation in the next), nothing sent."""
    from django.conf import settings

    names = (
        "CLOSEOUT_AUDIT_CHECKPOINT_FILE",
        "CLOSEOUT_AUDIT_CHECKPOINT_URL",
        "CLOSEOUT_AUDIT_CHECKPOINT_EMAIL",
    )
    saved = {name: getattr(settings, name) for name in names}
    settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE = (
        tmp_path_factory.mktemp("audit-checkpoints") / "audit-checkpoints.jsonl"
    )
    settings.CLOSEOUT_AUDIT_CHECKPOINT_URL = ""
    settings.CLOSEOUT_AUDIT_CHECKPOINT_EMAIL = []
    yield
    for name, value in saved.items():
        setattr(settings, name, value)


# --- shared data and settings for the domain tests -------------------------------------------


# Modest example counts keep each database pass fast; every example builds its own documents
# inside a savepoint that is rolled back (tests/factories.py `rolled_back`), so the
# function-scoped fixtures (org tree, users) are shared safely between examples.
hypothesis_settings.register_profile(
    "closeout",
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A quick look while editing: CLOSEOUT_HYPOTHESIS_PROFILE=quick (5 examples, no shrinking).
hypothesis_settings.register_profile(
    "quick",
    parent=hypothesis_settings.get_profile("closeout"),
    max_examples=5,
    phases=[Phase.explicit, Phase.generate],
)
hypothesis_settings.load_profile(os.environ.get("CLOSEOUT_HYPOTHESIS_PROFILE", "closeout"))


@pytest.fixture
def org(db: None) -> Org:
    return org_tree()


@pytest.fixture
def operator(org: Org) -> User:
    """Close directly, hold and release across the company; cannot reopen."""
    return user_with_role("op", "operator", org.company)


@pytest.fixture
def supervisor(org: Org) -> User:
    """Operator (inherited) plus reopen and approvals across the company."""
    return user_with_role("sup", "supervisor", org.company)


# --- a task broker that does not answer (issue 11, item 8) -------------------------------------

DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


def point_broker(settings: Any, url: str, queue: str = "closeout-test") -> None:
    """Point the app's broker at `url` with a short connection timeout and no publish retries,
    dropping the connections it pooled for the previous URL."""
    from closeout.celery import app

    settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    app.conf.broker_connection_timeout = 1
    app.conf.broker_transport_options = {"socket_connect_timeout": 1, "socket_timeout": 2}
    app.conf.task_publish_retry_policy = {"max_retries": 0}
    app.conf.task_default_queue = queue
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def dead_broker(settings: Any) -> Iterator[None]:
    """CELERY_BROKER_URL pointing at a closed port, with a short timeout; restored after."""
    from closeout.celery import app

    settings.CLOSEOUT_TASKS_INLINE = False
    defaults = {
        name: app.conf[name]
        for name in (
            "broker_url",
            "broker_connection_timeout",
            "broker_transport_options",
            "task_publish_retry_policy",
            "task_default_queue",
        )
    }
    point_broker(settings, DEAD_BROKER)
    yield
    for name, value in defaults.items():
        app.conf[name] = value
    app._pool = None
    app.amqp._producer_pool = None
