"""The two databases' ways of taking, opening and restoring a backup: SQLite's online backup
API, and PostgreSQL's `pg_dump -Fc` / `pg_restore` (the PostgreSQL client tools)."""

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.utils import load_backend
from django.utils.translation import gettext

from closeout.ops.manifest import BackupFailed, BackupInvalid, Contents, database_contents

SUFFIXES = {"sqlite": ".sqlite3", "postgresql": ".dump"}
CHECK_ALIAS = "closeout_backup_check"


def pg_tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    if not found:
        raise BackupFailed(
            gettext("%(tool)s is not installed: install the PostgreSQL client (postgresql-client)")
            % {"tool": name}
        )
    return found


def _pg_env(db: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if db.get(key):
            env[var] = str(db[key])
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def pg_run(args: list[str], db: dict[str, Any]) -> None:
    done = subprocess.run(args, env=_pg_env(db), capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise BackupFailed(
            gettext("%(tool)s failed (exit %(code)s): %(error)s")
            % {"tool": Path(args[0]).name, "code": done.returncode, "error": tail}
        )


def pg_admin(db: dict[str, Any], sql: str) -> None:
    """A statement that cannot run in a transaction (CREATE/DROP DATABASE), on its own
    connection to the configured database."""
    import psycopg

    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "dbname": db["NAME"],
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        conn.execute(sql)


def restore_postgresql(path: Path, db: dict[str, Any], name: str) -> None:
    """pg_restore into database `name` in one transaction (all or nothing); objects of the
    same name that are there (an empty, migrated schema) are dropped first."""
    pg_run(
        [
            pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--single-transaction",
            "--dbname",
            name,
            str(path),
        ],
        db,
    )


def take_sqlite(part: Path) -> Contents:
    db_name = str(connection.settings_dict["NAME"])
    if db_name == ":memory:" or "mode=memory" in db_name:  # the test database
        connection.ensure_connection()
        source = connection.connection
        own = False
    else:
        # Its own connection: the last committed state, whatever this one has under way.
        source = sqlite3.connect(db_name, timeout=60)
        own = True
    target = sqlite3.connect(part)
    try:
        source.backup(target)
        # One self-contained file (no -wal beside it), readable in read-only mode.
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        if own:
            source.close()
    with opened_sqlite(part) as alias:
        return database_contents(alias)


def take_postgresql(part: Path) -> Contents:
    """pg_dump in a snapshot exported by a repeatable-read transaction, in which the counts
    and the audit head are read: the manifest describes exactly what was dumped."""
    db = connection.settings_dict
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        pg_run(
            [
                pg_tool("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--file",
                str(part),
                "--dbname",
                str(db["NAME"]),
            ],
            db,
        )
        return database_contents()


@contextmanager
def _alias(settings_dict: dict[str, Any]) -> Iterator[str]:
    """A second database connection under CHECK_ALIAS for the duration (made here, not
    configured: the ORM reaches it with `using`)."""
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, CHECK_ALIAS)
    connections[CHECK_ALIAS] = wrapper
    try:
        yield CHECK_ALIAS
    finally:
        wrapper.close()
        del connections[CHECK_ALIAS]


@contextmanager
def opened_sqlite(path: Path) -> Iterator[str]:
    """A SQLite backup file opened read-only under an alias."""
    db = {
        **connections[DEFAULT_DB_ALIAS].settings_dict,
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": f"file:{path.resolve()}?mode=ro",
        "OPTIONS": {},
    }
    with _alias(db) as alias:
        yield alias


@contextmanager
def opened_postgresql(path: Path) -> Iterator[str]:
    """A pg_dump archive restored into a scratch database, dropped afterwards."""
    db = dict(connections[DEFAULT_DB_ALIAS].settings_dict)
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        raise BackupInvalid(gettext("verifying a PostgreSQL backup needs a PostgreSQL database"))
    scratch = f"closeout_verify_{uuid.uuid4().hex[:12]}"
    pg_admin(db, f'CREATE DATABASE "{scratch}"')
    try:
        restore_postgresql(path, db, scratch)
        with _alias({**db, "NAME": scratch}) as alias:
            yield alias
    finally:
        pg_admin(db, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def restore_sqlite(path: Path) -> None:
    source = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    try:
        connection.ensure_connection()
        source.backup(connection.connection)
    finally:
        source.close()
    # The next connection runs the configured PRAGMAs (WAL) on the restored file again.
    connection.close()
