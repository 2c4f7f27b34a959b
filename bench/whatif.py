"""What-if before a policy change (S19, issue 17 item 11): time `policy_whatif` on PostgreSQL at
200,000 open purchase orders (target ≤ 2 s).

    .venv/bin/python bench/whatif.py [--documents 200000] [--lines 5] [--repeat 5]

Uses the database given by BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/closeout_bench_whatif,
this engineer's own): when it holds fewer open purchase orders than --documents, it is dropped,
created again, migrated and filled with `closeout gen-data` (half ready to close). Then it asks
what loosening the under-delivery tolerance, switching a rule off and lengthening the grace days
would do, each --repeat times, and prints the median and the slowest time with the counts, and
the CPU time of the database connection's own server process (read from /proc when the server
runs on this machine: work done, whatever the load of the machine; the CPU of parallel workers is
not in it, `--serial` turns them off so the figure is the statement's whole work).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeout_bench_whatif"
)
CLOSEOUT = Path(sys.executable).with_name("closeout")


def _admin(sql: str) -> None:
    import psycopg

    server, _, _name = URL.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _open_pos() -> int:
    import psycopg

    try:
        with psycopg.connect(URL) as conn:
            row = conn.execute(
                "SELECT count(*) FROM documents_document "
                "WHERE doc_type = 'purchase_order' AND close_state = 'open'"
            ).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _generate(documents: int, lines: int) -> None:
    name = URL.rpartition("/")[2]
    _admin(f"DROP DATABASE IF EXISTS {name}")
    _admin(f"CREATE DATABASE {name}")
    subprocess.run([str(CLOSEOUT), "migrate", "-v0"], check=True)
    started = time.perf_counter()
    subprocess.run(
        [
            str(CLOSEOUT),
            "gen-data",
            f"--documents={documents}",
            f"--lines-per-document={lines}",
            "--ready-share=0.5",
            "--seed=7",
            "--type=purchase_order",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    import psycopg

    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"generated {documents:,} purchase orders in {time.perf_counter() - started:.0f} s")


def _actor() -> Any:
    from django.contrib.auth import get_user_model

    from closeout.access.models import Grant, Role
    from closeout.access.services import grant_create
    from closeout.core.models import OrgUnit

    user, _ = get_user_model().objects.get_or_create(username="bench_whatif")
    if not Grant.objects.filter(user_id=user.pk).exists():
        root = OrgUnit.objects.filter(parent__isnull=True).order_by("pk").first()
        assert root is not None  # noqa: S101 (gen-data made one)
        grant_create(actor=None, user=user, role=Role.objects.get(code="admin"), org_unit=root)
    return user


def _explain(actor: Any, changes: dict[str, Any]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the what-if's counting statement, as policy_whatif runs it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from closeout.closing.whatif import policy_whatif

    with CaptureQueriesContext(connection) as queries:
        policy_whatif(actor=actor, doc_type="purchase_order", changes=changes, sample_size=0)
    statement = next(q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
        print("\n".join(row[0] for row in cursor.fetchall()))


def _server_cpu() -> Any:
    """A function returning the CPU seconds used so far by this connection's server process,
    or None when /proc does not show it (another machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")

    def used() -> float | None:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of each what-if's statement"
    )
    parser.add_argument(
        "--serial",
        action="store_true",
        help="no parallel workers (max_parallel_workers_per_gather 0)",
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = URL
    if _open_pos() < args.documents:
        _generate(args.documents, args.lines)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    from closeout.closing.whatif import policy_whatif

    actor = _actor()
    if args.serial:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = 0")
    server_cpu = _server_cpu()
    cases: dict[str, dict[str, Any]] = {
        "under-delivery tolerance 2% → 10%": {"under_qty_pct": Decimal(10)},
        "rule 'received' switched off": {"rule_settings": {"received": {"enabled": False}}},
        "grace days → 30": {"grace_days": 30},
    }
    print(f"open purchase orders: {_open_pos():,}")
    for label, changes in cases.items():
        times, cpu, own = [], [], []
        for _ in range(args.repeat):
            started, cpu_started = time.perf_counter(), server_cpu()
            own_started = time.process_time()
            result = policy_whatif(actor=actor, doc_type="purchase_order", changes=changes)
            times.append(time.perf_counter() - started)
            own.append(time.process_time() - own_started)
            cpu_used = server_cpu()
            if cpu_started is not None and cpu_used is not None:
                cpu.append(cpu_used - cpu_started)
        if args.explain:
            _explain(actor, changes)
        moved = ", ".join(f"{v} {n:,}→{m:,}" for v, n, m, _d in result.rows() if n or m)
        on_server = f", server CPU median {statistics.median(cpu):.2f} s" if cpu else ""
        print(
            f"{label}: median {statistics.median(times):.2f} s, slowest {max(times):.2f} s"
            f"{on_server}, process CPU median {statistics.median(own):.2f} s, "
            f"load {os.getloadavg()[0]:.1f} "
            f"({result.examined:,} examined, {result.changed:,} change; {moved}; "
            f"release {result.release_before:,.0f} → {result.release_after:,.0f})"
        )


if __name__ == "__main__":
    main()
