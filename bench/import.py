"""Import benchmark (导入结案指令): validate and execute a 50,000-row .xlsx of close
instructions, timed separately.

    .venv/bin/python bench/import.py [--rows 50000] [--documents 60000] [--db postgres|sqlite]
                                     [--keep] [--request-weight 2]

PostgreSQL (default): creates the database closeout_import_bench on BENCH_POSTGRES (default
postgres://postgres@127.0.0.1:5432), drops it at the end unless --keep. SQLite: a file in a
temporary directory. Generates purchase orders with `closeout gen-data` (2 lines each, 60%
ready to close), writes the file (not timed) with a mix of rows: whole-document closes (ready
ones, and exception ones with and without the remark they need), line closes, requests, and
rows with errors (unknown numbers, unknown lines, duplicates, bad dates, unknown reasons), then
times `import_validate` (read, check, store the report, audit) and `import_execute` (create the
batch job and run it in this process, one worker).
"""

import argparse
import cProfile
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proc import server_cpu as _server_cpu

SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB_PREFIX", "closeout") + "_import_bench"
# BENCH_DATABASE_URL (postgres://…/name) names the server and the database at once.
if os.environ.get("BENCH_DATABASE_URL"):
    SERVER, DB = os.environ["BENCH_DATABASE_URL"].rsplit("/", 1)
CLOSEOUT = Path(sys.executable).with_name("closeout")
HEADERS = [
    "单据类型 document type",
    "单号 number",
    "行号 line numbers",
    "动作 action",
    "原因代码 reason code",
    "备注 remark",
    "结案日期 close date",
]


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--documents", type=int, default=60_000)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument(
        "--request-weight",
        type=int,
        default=2,
        help="weight of close-request rows in the mix (of 100; 0 = none): requests go one by "
        "one through the approval service",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        help="profile the execution (cProfile) and print "
        "its N most costly functions by cumulative time",
    )
    args = parser.parse_args()
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="closeout_import_bench_") as tmp:
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
            # Its own audit checkpoints and backups: a shared var/ holds another run's.
            os.environ["CLOSEOUT_VAR_DIR"] = tmp
            _run(args, Path(tmp))
        return
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    os.environ["CLOSEOUT_VAR_DIR"] = tempfile.mkdtemp(prefix="closeout_import_bench_var_")
    _admin(f"DROP DATABASE IF EXISTS {DB}")
    _admin(f"CREATE DATABASE {DB}")
    try:
        with tempfile.TemporaryDirectory(prefix="closeout_import_bench_") as tmp:
            _run(args, Path(tmp))
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _admin(f"DROP DATABASE IF EXISTS {DB}")


def _run(args: argparse.Namespace, tmp: Path) -> None:
    subprocess.run([str(CLOSEOUT), "migrate", "-v0"], check=True)
    started = time.perf_counter()
    subprocess.run(
        [
            str(CLOSEOUT),
            "gen-data",
            f"--documents={args.documents}",
            "--lines-per-document=2",
            "--ready-share=0.6",
            "--seed=5",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    print(f"{args.db}: generated {args.documents:,} documents in {seconds:.0f} s")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    path = tmp / "instructions.xlsx"
    counts = _write_file(path, args.rows, args.request_weight)
    print("file: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"file size {path.stat().st_size / 1e6:.1f} MB")
    _time(path, args.profile)


def _write_file(path: Path, rows: int, request_weight: int = 2) -> dict[str, int]:
    from django.utils import timezone
    from openpyxl import Workbook

    from closeout.closing.selectors import verdicts_for
    from closeout.documents.models import Document

    ids = list(
        Document.objects.filter(doc_type="purchase_order", close_state="open")
        .order_by("pk")
        .values_list("pk", "number")
    )
    verdicts: dict[int, str] = {}
    for start in range(0, len(ids), 5000):
        part = [pk for pk, _n in ids[start : start + 5000]]
        verdicts.update(
            {pk: v.verdict for pk, v in verdicts_for(part, doc_type="purchase_order").items()}
        )
    rng = random.Random(7)
    rng.shuffle(ids)
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("导入 import")
    sheet.append(HEADERS)
    counts: dict[str, int] = {}
    written: list[list[object]] = []
    docs = iter(ids)
    while len(written) < rows:
        kind = rng.choices(
            ["close", "lines", "request", "unknown", "bad_line", "duplicate", "date", "reason"],
            weights=[76, 4, request_weight, 4, 3, 3, 4, 4],
        )[0]
        if kind == "duplicate" and written:
            row = list(rng.choice(written))
        elif kind == "unknown":
            row = ["purchase_order", f"NOPE-{len(written)}", "", "close", "completed", "", ""]
        else:
            try:
                pk, number = next(docs)
            except StopIteration:
                break
            verdict = verdicts.get(pk, "ready")
            remark = "" if verdict == "ready" or rng.random() < 0.3 else "导入：例外已确认"
            row = ["purchase_order", number, "", "close", "completed", remark, yesterday]
            if kind == "lines":
                row[2] = "1"
            elif kind == "request":
                row[3] = "申请结案 request"
            elif kind == "bad_line":
                row[2] = "1,7"
            elif kind == "date":
                row[6] = "2026-13-45"
            elif kind == "reason":
                row[4] = "no_such_reason"
        counts[kind] = counts.get(kind, 0) + 1
        written.append(row)
        sheet.append(row)
    workbook.save(path)
    return counts


def _time(path: Path, profile: int = 0) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import override_settings

    from closeout.access.models import Role
    from closeout.access.services import grant_create
    from closeout.audit.services import audit_chain_verify
    from closeout.batches.imports import import_execute, import_validate
    from closeout.core.models import OrgUnit

    user = get_user_model().objects.create_user("bench-import")
    grant_create(
        actor=None,
        user=user,
        role=Role.objects.get(code="operator"),
        org_unit=OrgUnit.objects.get(code="GEN"),
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    t0 = time.perf_counter()
    with path.open("rb") as handle:
        imported = import_validate(actor=user, upload=handle, file_name=path.name)
    validate_s = time.perf_counter() - t0
    print(
        f"validate: {imported.total_rows:,} rows in {validate_s:.2f} s "
        f"({imported.total_rows / validate_s:,.0f} rows/s): {imported.valid_rows:,} valid, "
        f"{imported.error_rows:,} with errors"
    )
    after_validate = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after validate: {after_validate:.0f} MB")
    del imported.report  # execution reads the rows from the database, as the web request does
    profiler = cProfile.Profile() if profile else None
    statements = [0]

    def counted(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements[0] += 1
        return execute(sql, params, many, context)

    cpu0, server0 = _cpu_seconds(), _server_cpu()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with (
        override_settings(CLOSEOUT_TASKS_INLINE=True, CELERY_BROKER_URL=""),
        connection.execute_wrapper(counted),
    ):
        if profiler is not None:
            profiler.enable()
        job = import_execute(actor=user, import_file=imported, workers=1)
        if profiler is not None:
            profiler.disable()
    execute_s = time.perf_counter() - t0
    cpu_s = _cpu_seconds() - cpu0
    server_s = _server_cpu() - server0
    load1 = os.getloadavg()[0]
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
    job.refresh_from_db()
    print(
        f"execute: {job.processed:,} rows in {execute_s:.2f} s "
        f"({job.processed / execute_s:,.0f} rows/s): {job.succeeded:,} done, "
        f"{job.failed:,} failed, {job.skipped:,} skipped; batch #{job.pk} {job.state}"
    )
    from django.db.models import Count

    outcomes = dict(
        job.items.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n")
    )
    print(
        f"execute: {statements[0]:,} SQL statements, {cpu_s:.1f} s CPU in this process "
        f"(independent of the machine's load: {job.processed / max(cpu_s, 0.001):,.0f} rows per "
        "CPU second)"
    )
    print(
        f"execute: server CPU {server_s:.1f} s (PostgreSQL backend of this connection); process "
        f"+ server {cpu_s + server_s:.1f} s = {job.processed / max(cpu_s + server_s, 0.001):,.0f} "
        f"rows per CPU second; load average {load0:.1f} before, {load1:.1f} after"
    )
    print("outcomes: " + ", ".join(f"{k or '-'} {v:,}" for k, v in sorted(outcomes.items())))
    verdict = audit_chain_verify()
    print(f"audit chain {'intact' if verdict.intact else 'BROKEN'}: {verdict.checked:,} events")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (validate and execute): {peak:.0f} MB")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
