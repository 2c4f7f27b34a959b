"""Backup and restore round trips with the real `closeout` command (issue 16 §3): an
installation with closed and open documents is backed up, verified, wiped, restored into an
empty (migrated) database and verified again, and then worked on: `migrate` has nothing to do,
a document closes and the audit chain, with the restore recorded in it, verifies. On SQLite in a
temporary folder; on PostgreSQL in a scratch database with a unique name, dropped afterwards."""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# A dozen processes of the real command: more than the default per-test limit on a busy machine.
pytestmark = pytest.mark.timeout(900)

CLOSEOUT = Path(sys.executable).with_name("closeout")
PG_SERVER = os.environ.get("CLOSEOUT_TEST_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
REPO = Path(__file__).resolve().parents[2]
# Three documents ready to close and an operator, written through the services (with their
# audit events), in a process of their own.
SEED = """
import django
django.setup()
from django.db import transaction
from tests.factories import PO, org_tree, ready_document, user_with_role
with transaction.atomic():
    org = org_tree()
    user_with_role("op", "operator", org.company)
    print(" ".join(ready_document(PO, org.dept_a).number for _ in range(3)))
"""


def _env(var: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CLOSEOUT_"))}
    env.update(
        CLOSEOUT_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="closeout.settings",
        LANGUAGE_CODE="en",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def _run(env: dict[str, str], *args: str, code: int = 0) -> str:
    done = subprocess.run(
        [str(CLOSEOUT), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == code, f"closeout {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _round_trip(env: dict[str, str], backup: Path, wipe: Callable[[], None]) -> None:
    _run(env, "migrate", "--no-input", "-v0")
    first, second, _ = subprocess.run(
        [sys.executable, "-c", SEED], env=env, cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    _run(env, "close", "purchase_order", first, "--reason", "completed", "--as", "op")
    _run(env, "audit", "checkpoint")
    taken = _run(env, "backup", "--out", str(backup))
    assert "audit head #" in taken
    assert "verified" in _run(env, "backup", "verify", str(backup))
    # A checkpoint of the chain after the backup (its own event): the restore moves it aside.
    _run(env, "audit", "checkpoint")

    wipe()
    _run(env, "migrate", "--no-input", "-v0")
    restored = _run(env, "restore", str(backup))
    assert "documents_document" in restored and "audit chain verified" in restored
    assert "before-restore" in restored

    assert "No migrations to apply" in _run(env, "migrate", "--no-input")
    assert "intact" in _run(env, "audit", "verify")
    closed = _run(env, "close", "purchase_order", second, "--reason", "completed", "--as", "op")
    assert "document state: closed" in closed
    verdict = _run(env, "audit", "verify")
    assert "audit chain intact" in verdict


def test_sqlite_round_trip(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = _env(var, None)

    def wipe() -> None:
        for path in var.glob("closeout.sqlite3*"):
            path.unlink()

    _round_trip(env, tmp_path / "closeout.sqlite3.backup", wipe)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture
def scratch_database() -> Iterator[str]:
    name = f"closeout_backup_test_{uuid.uuid4().hex[:10]}"
    _pg_admin(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres_only
def test_postgresql_round_trip(tmp_path: Path, scratch_database: str) -> None:
    env = _env(tmp_path / "var", f"{PG_SERVER}/{scratch_database}")

    def wipe() -> None:
        _pg_admin(f"DROP DATABASE {scratch_database} WITH (FORCE)")
        _pg_admin(f"CREATE DATABASE {scratch_database}")

    _round_trip(env, tmp_path / "closeout.dump", wipe)
