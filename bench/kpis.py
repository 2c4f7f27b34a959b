"""Closing-KPI benchmark (S22/S23): time of the whole closing report (`kpi_report`, every KPI)
on generated purchase orders after an automatic sweep, median of 5 runs per filter.

    .venv/bin/python bench/kpis.py [--documents 50000] [--lines 4] [--db postgres|sqlite|both]

Creates the database closeout_kpi_bench (BENCH_POSTGRES, default
postgres://postgres@127.0.0.1:5432; dropped at the end) or an SQLite file in a temporary
directory, migrates, generates documents with `closeout gen-data`, runs `closeout sweep`,
ANALYZEs, and times the report in a child process for a viewer with report.view over every
organisation.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DB = "closeout_kpi_bench"
CLOSEOUT = Path(sys.executable).with_name("closeout")

TIMING = """
import statistics, time
from datetime import date
import django
django.setup()
from django.contrib.auth.models import User
from django.db import connection
from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.core.models import OrgUnit
from closeout.reports.kpi_base import KpiFilter
from closeout.reports.kpis import kpi_report
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")
viewer = User.objects.create_user(username="kpi_bench")
for unit in OrgUnit.objects.filter(parent__isnull=True):
    grant_create(actor=None, user=viewer, role=Role.objects.get(code="auditor"), org_unit=unit)
today = date.today()
for name, kpi in (
    ("everything", KpiFilter()),
    ("purchase orders", KpiFilter(doc_type="purchase_order")),
    ("this year", KpiFilter(date_from=date(today.year, 1, 1), date_to=today)),
):
    times = []
    for _ in range(5):
        start = time.perf_counter()
        report = kpi_report(viewer, kpi)
        times.append(time.perf_counter() - start)
    closes = sum(row[1] for row in report.table("cycle_by_doc_type").rows)
    print(f"  {name:16} {statistics.median(times):6.2f} s  ({closes} closes in cycle time)")
"""


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _run(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(CLOSEOUT), *args], env=env, check=True, stdout=subprocess.DEVNULL)


def bench(label: str, env: dict[str, str], documents: int, lines: int) -> None:
    _run(env, "migrate", "-v0")
    _run(
        env,
        "gen-data",
        "--documents",
        str(documents),
        "--lines-per-document",
        str(lines),
        "--ready-share",
        "0.6",
        "--seed",
        "1",
    )
    _run(env, "sweep")
    print(f"{label}: {documents:,} documents × {lines} lines, 60% closed by the sweep")
    env = {**env, "DJANGO_SETTINGS_MODULE": "closeout.settings"}
    subprocess.run([sys.executable, "-c", TIMING], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=50000)
    parser.add_argument("--lines", type=int, default=4)
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if args.db in ("postgres", "both"):
        _admin(f"DROP DATABASE IF EXISTS {DB}")
        _admin(f"CREATE DATABASE {DB}")
        try:
            env = {**base, "DATABASE_URL": f"{SERVER}/{DB}"}
            bench("PostgreSQL", env, args.documents, args.lines)
        finally:
            _admin(f"DROP DATABASE IF EXISTS {DB}")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as var:
            bench("SQLite", {**base, "CLOSEOUT_VAR_DIR": var}, args.documents, args.lines)


if __name__ == "__main__":
    main()
