"""What /healthz and /readyz check: the database answers, every migration is applied, the
broker answers when one is configured."""

from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

BROKER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def database_check() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Check("database", False, _first_line(exc))
    return Check("database", True, connection.vendor)


def migrations_check() -> Check:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return Check("migrations", False, _first_line(exc))
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
        return Check("migrations", False, f"{len(plan)} not applied: {names}{more}")
    return Check("migrations", True, "all applied")


def broker_check() -> Check | None:
    """None when no broker is configured (background work runs in the process)."""
    if not settings.CELERY_BROKER_URL:
        return None
    from closeout.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure to connect means "not ready"
        return Check("broker", False, _first_line(exc))
    return Check("broker", True, "answers")


def readiness() -> list[Check]:
    database = database_check()
    checks = [database]
    if database.ok:
        checks.append(migrations_check())
    broker = broker_check()
    if broker is not None:
        checks.append(broker)
    return checks


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
