"""Work-queue page benchmark (issue 6): server time of /queue/ on PostgreSQL at 1,000,000
documents, per filter and sort, median and p95 over 20 requests each.

    .venv/bin/python bench/queue_page.py [--documents 1000000] [--lines 2] [--keep]

Creates the database closeout_queue_bench (BENCH_POSTGRES, default
postgres://postgres@127.0.0.1:5432), generates purchase orders with gen-data, and times the
page through Django's test client (the whole server-side view: selectors, template, queries).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB_PREFIX", "closeout") + "_queue_bench"
CLOSEOUT = Path(sys.executable).with_name("closeout")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="time the pages on the database a --keep run left"
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    os.environ.setdefault("CLOSEOUT_VAR_DIR", tempfile.mkdtemp(prefix="closeout_queue_bench_"))
    if args.reuse:
        subprocess.run([str(CLOSEOUT), "migrate", "-v0"], check=True)
        _time_pages(args)
        return
    _admin(f"DROP DATABASE IF EXISTS {DB}")
    _admin(f"CREATE DATABASE {DB}")
    try:
        subprocess.run([str(CLOSEOUT), "migrate", "-v0"], check=True)
        started = time.perf_counter()
        subprocess.run(
            [
                str(CLOSEOUT),
                "gen-data",
                f"--documents={args.documents}",
                f"--lines-per-document={args.lines}",
                "--ready-share=0.5",
                "--seed=3",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"generated {args.documents:,} documents in {time.perf_counter() - started:.0f} s")
        _time_pages(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _admin(f"DROP DATABASE IF EXISTS {DB}")


def _time_pages(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    from closeout.access.models import Role
    from closeout.access.services import grant_create
    from closeout.core.models import OrgUnit

    setup_test_environment()
    user, new = get_user_model().objects.get_or_create(username="bench-queue")
    if new:
        grant_create(
            actor=None,
            user=user,
            role=Role.objects.get(code="operator"),
            org_unit=OrgUnit.objects.get(code="GEN"),
        )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    first = client.get("/queue/purchase_order/")
    cases = {
        "default page": {},
        "next page (keyset)": {"after": first.context["next_cursor"]},
        "sort by date": {"sort": "-document_date"},
        "sort by number": {"sort": "number"},
        "sort by amount": {"sort": "-total_amount_company"},
        "number prefix": {"number": "GEN-00012345"},
        "partner": {"partner": "GEN-P0001"},
        "state closed": {"state": "closed"},
        "verdict ready": {"verdict": "ready"},
        "verdict exception": {"verdict": "exception"},
        "verdict warning": {"verdict": "warning"},
        "verdict blocked": {"verdict": "blocked"},
        "has quarantined": {"quarantined": "yes"},
        "age >= 30 days": {"min_age_days": "30"},
    }
    print(f"{'case':22s} {'rows':>4s} {'median':>9s} {'p95':>9s}")
    for name, params in cases.items():
        times = []
        for i in range(args.requests + 1):
            t0 = time.perf_counter()
            response = client.get("/queue/purchase_order/", params)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code}")
            if i:  # the first request warms caches
                times.append(elapsed)
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        rows = len(response.context["rows"])
        print(f"{name:22s} {rows:4d} {statistics.median(times):7.1f} ms {p95:7.1f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
