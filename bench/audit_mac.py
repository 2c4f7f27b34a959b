"""Audit chain benchmark: the cost of sealing events with HMAC-SHA-256 instead of plain SHA-256.

    .venv/bin/python bench/audit_mac.py [--events 100000] [--chunk 2000] [--db sqlite|postgres|both]
                                        [--repeat N]

Per database and mode, in a fresh database (SQLite: a file in a temporary directory;
PostgreSQL: closeout_bench_audit on 127.0.0.1:5432, created and dropped here), it appends
`--events` events with `audit_append` in transactions of `--chunk` events (as the sweep does:
COPY on PostgreSQL), then verifies the chain. Modes:

- `sha256`: the chain function is plain SHA-256 (as before keys), everything else the same;
- `hmac`: HMAC-SHA-256 under the audit key (the code as it is);
- `hmac-no-triggers`: HMAC with the audit tables' triggers switched off, to show their cost.

It also times the hash functions alone over the same canonical payloads.
"""

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PG_DB = "closeout_bench_audit"
MODES = ("sha256", "hmac", "hmac-no-triggers")


def child(mode: str, events: int, chunk: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from closeout.audit import services
    from closeout.audit.models import AuditAction
    from closeout.audit.services import AuditEntry, audit_append, audit_chain_verify

    call_command("migrate", verbosity=0)
    if mode == "sha256":

        class PlainSha256:
            @staticmethod
            def digest(key: bytes, message: bytes, digest: str) -> bytes:
                return hashlib.sha256(message).digest()

            compare_digest = staticmethod(hmac.compare_digest)

        services.hmac = PlainSha256  # type: ignore[assignment]
        # The verify walk recomputes through event_hash: the same plain SHA-256 there.
        services.event_hash = lambda event, ring=None: hashlib.sha256(  # type: ignore[assignment]
            services.canonical_json(services.canonical_payload(event))
        ).hexdigest()
    if mode == "hmac-no-triggers":
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                for table in ("audit_auditevent", "audit_auditchainhead"):
                    cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            else:
                cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit_%'"
                )
                for (name,) in cursor.fetchall():
                    cursor.execute(f'DROP TRIGGER "{name}"')
    data = {"document_id": 0, "lines": [1, 2, 3], "reason_code": "completed", "qty": "12.5000"}
    started = time.perf_counter()
    done = 0
    while done < events:
        n = min(chunk, events - done)
        with transaction.atomic():
            audit_append(
                actor=None,
                entries=[
                    AuditEntry(
                        AuditAction.DOCUMENT_CLOSED,
                        "document",
                        done + i,
                        f"PO{done + i:08d}",
                        {**data, "document_id": done + i},
                        "auto-close: all rules passed",
                    )
                    for i in range(n)
                ],
            )
        done += n
    append_s = time.perf_counter() - started
    started = time.perf_counter()
    verdict = audit_chain_verify()
    verify_s = time.perf_counter() - started
    return {
        "mode": mode,
        "db": connection.vendor,
        "events": events,
        "append_s": round(append_s, 2),
        "events_per_s": round(events / append_s),
        "verify_s": round(verify_s, 2),
        "intact": verdict.intact,
        "checked": verdict.checked,
    }


def hash_only(events: int) -> dict[str, float]:
    """The chain functions alone over `events` canonical payloads, in seconds."""
    payloads = [
        json.dumps(
            {
                "seq": i,
                "at": "2026-12-03T11:20:00.123456Z",
                "actor_id": None,
                "actor_name": "system",
                "action": 201,
                "object_type": "document",
                "object_id": str(i),
                "object_repr": f"PO{i:08d}",
                "data": {"document_id": i, "lines": [1, 2, 3], "reason_code": "completed"},
                "reason": "auto-close: all rules passed",
                "request_id": "",
                "key_id": "k1",
                "http_request_id": "",
                "prev_hash": "0" * 64,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        for i in range(events)
    ]
    key = os.urandom(32).hex().encode()
    times = {}
    started = time.perf_counter()
    for p in payloads:
        hashlib.sha256(p).hexdigest()
    times["sha256"] = time.perf_counter() - started
    started = time.perf_counter()
    for p in payloads:
        hmac.digest(key, p, "sha256").hex()
    times["hmac.digest"] = time.perf_counter() - started
    started = time.perf_counter()
    for p in payloads:
        hmac.new(key, p, hashlib.sha256).hexdigest()
    times["hmac.new"] = time.perf_counter() - started
    return times


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def run(db: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="closeout-bench-audit-") as tmp:
        env = {**os.environ, "CLOSEOUT_VAR_DIR": tmp, "CLOSEOUT_AUDIT_KEY": ""}
        env.pop("DATABASE_URL", None)
        if db == "postgres":
            _pg(f"DROP DATABASE IF EXISTS {PG_DB}")
            _pg(f"CREATE DATABASE {PG_DB}")
            env["DATABASE_URL"] = f"{PG_SERVER}/{PG_DB}"
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, *sys.argv[1:]],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            if db == "postgres":
                _pg(f"DROP DATABASE IF EXISTS {PG_DB}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode (fastest shown)")
    parser.add_argument("--child", choices=MODES)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    if args.child:
        print(json.dumps(child(args.child, args.events, args.chunk)))
        return
    times = hash_only(args.events)
    print(f"hash functions alone, {args.events:,} canonical payloads:")
    for name, seconds in times.items():
        print(f"  {name:12} {seconds:6.3f} s  ({seconds / args.events * 1e6:.2f} µs/event)")
    dbs = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    print(f"\naudit_append of {args.events:,} events, {args.chunk:,} per transaction:")
    print(f"  {'db':9} {'mode':17} {'append s':>9} {'events/s':>9} {'verify s':>9}  intact")
    for db in dbs:
        # Modes interleaved, each run --repeat times; the fastest run of each mode is shown
        # (the least disturbed by other work on the machine).
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):
            for mode in MODES:
                runs[mode].append(run(db, mode, args))
        results = [min(runs[mode], key=lambda r: r["append_s"]) for mode in MODES]
        for r in results:
            spread = sorted(x["append_s"] for x in runs[r["mode"]])
            print(
                f"  {db:9} {r['mode']:17} {r['append_s']:9.2f} {r['events_per_s']:9,} "
                f"{r['verify_s']:9.2f}  {r['intact']} ({r['checked']:,})"
                + (f"  runs: {', '.join(f'{x:.1f}' for x in spread)}" if len(spread) > 1 else "")
            )
        base = results[0]["append_s"]
        for r in results[1:]:
            print(f"  {db:9} {r['mode']} vs sha256: {r['append_s'] / base:.2f}×")


if __name__ == "__main__":
    main()
