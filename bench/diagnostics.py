"""Consistency-check benchmark: how long each check's one query takes on a generated database.

    .venv/bin/python bench/diagnostics.py [--documents 50000] [--lines 5] [--db postgres|sqlite]

Generates purchase and sales orders with `closeout gen-data` (half ready to close), plants a few
inconsistencies, then times each check's count, the first drill-down page of each check and a
whole `diagnostics_run()`. PostgreSQL: database closeout_bench_diag on 127.0.0.1:5432 (created
and dropped here); SQLite: a file in a temporary directory.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PG_DB = "closeout_bench_diag"


def child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from closeout.documents.models import Line
    from closeout.reports.diagnostics import CHECKS, diagnostic_rows, diagnostics_run

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command(
        "gen_data",
        documents=args.documents,
        lines_per_document=args.lines,
        doc_types=["purchase_order", "sales_order"],
        seed=1,
    )
    print(
        f"generated {args.documents} documents × {args.lines} lines per type "
        f"in {time.perf_counter() - started:.1f} s ({connection.vendor})"
    )
    # A few planted problems: over-received lines.
    ids = list(Line.objects.order_by("pk").values_list("pk", flat=True)[:: max(args.documents, 1)])
    Line.objects.filter(pk__in=ids).update(fulfilled_qty=10_000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"{'check':28} {'found':>8} {'count s':>9} {'page s':>8}")
    for check in CHECKS:
        t0 = time.perf_counter()
        found = diagnostic_rows(check.code).count()
        t1 = time.perf_counter()
        list(diagnostic_rows(check.code)[:50])
        t2 = time.perf_counter()
        print(f"{check.code:28} {found:8d} {t1 - t0:9.2f} {t2 - t1:8.2f}")
    t0 = time.perf_counter()
    run = diagnostics_run(actor=None)
    print(
        f"diagnostics_run: {run.problems} problems in {time.perf_counter() - t0:.2f} s "
        f"(stored duration {run.duration_ms} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=50_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    env = dict(os.environ)
    argv = [
        sys.executable,
        __file__,
        "--child",
        "--documents",
        str(args.documents),
        "--lines",
        str(args.lines),
    ]
    if args.db == "postgres":
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
            conn.execute(f"CREATE DATABASE {PG_DB}")
        try:
            env["DATABASE_URL"] = f"{PG_SERVER}/{PG_DB}"
            subprocess.run(argv, env=env, check=True)
        finally:
            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            env.pop("DATABASE_URL", None)
            env["CLOSEOUT_VAR_DIR"] = str(Path(tmp))
            subprocess.run(argv, env=env, check=True)


if __name__ == "__main__":
    main()
