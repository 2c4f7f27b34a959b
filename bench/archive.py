"""Archive benchmark: `archive_run()` over closed documents, then the evidence pack of their
month (export and verify).

    .venv/bin/python bench/archive.py [--documents 20000] [--lines 3] [--db postgres|sqlite]

Generates purchase orders with `closeout gen-data` (all ready to close), closes them with the
sweep, then archives them as if 400 days had passed (`archive_run(today=...)`), exports the pack
of this month and verifies it against the live chain. Prints the figures as JSON. PostgreSQL:
a database h_archive_bench on 127.0.0.1:5432 (created and dropped here); SQLite: a file in a
temporary directory.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

PG_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PG_DB = "h_archive_bench"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from closeout.access.models import Role
    from closeout.access.services import grant_create
    from closeout.closing.sweep import sweep_run
    from closeout.core.models import OrgUnit
    from closeout.reports.archive import archive_run
    from closeout.reports.archive_pack import archive_pack_export, period_parse
    from closeout.reports.archive_verify import archive_pack_verify

    call_command("migrate", verbosity=0)
    call_command(
        "gen_data",
        documents=args.documents,
        lines_per_document=args.lines,
        ready_share="1",
        doc_types=["purchase_order"],
        verbosity=0,
    )
    started = time.perf_counter()
    closed = sweep_run(doc_type="purchase_order").closed
    sweep_seconds = time.perf_counter() - started

    later = timezone.localdate() + timedelta(days=400)
    started = time.perf_counter()
    run = archive_run(doc_type="purchase_order", today=later)
    archive_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rerun = archive_run(doc_type="purchase_order", today=later)
    rerun_seconds = time.perf_counter() - started

    auditor = get_user_model().objects.create_user(username="bench-auditor")
    grant_create(
        actor=None,
        user=auditor,
        role=Role.objects.get(code="auditor"),
        org_unit=OrgUnit.objects.filter(parent__isnull=True).first(),
    )
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "pack.zip"
        started = time.perf_counter()
        result = archive_pack_export(
            actor=auditor, period=period_parse(f"{timezone.localdate():%Y-%m}"), out=pack
        )
        export_seconds = time.perf_counter() - started
        size_mb = pack.stat().st_size / 1e6
        started = time.perf_counter()
        verdict = archive_pack_verify(pack)
        verify_seconds = time.perf_counter() - started
    return {
        "documents": args.documents,
        "lines_per_document": args.lines,
        "closed_by_sweep": closed,
        "sweep_s": round(sweep_seconds, 2),
        "archived": run.archived,
        "archive_s": round(archive_seconds, 2),
        "archived_per_s": round(run.archived / archive_seconds) if archive_seconds else None,
        "rerun_archived": rerun.archived,
        "rerun_s": round(rerun_seconds, 2),
        "pack_documents": result.manifest["files"]["documents.csv"]["rows"],
        "pack_audit_events": result.manifest["files"]["audit.jsonl"]["rows"],
        "pack_mb": round(size_mb, 1),
        "export_s": round(export_seconds, 2),
        "verify_s": round(verify_seconds, 2),
        "verify_intact": verdict.intact,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    if args.db == "postgres":
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")
        _pg_admin(f"CREATE DATABASE {PG_DB}")
        os.environ["DATABASE_URL"] = f"{PG_SERVER}/{PG_DB}"
        try:
            figures = measure(args)
        finally:
            from django.db import connections

            connections.close_all()
            _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
            figures = measure(args)
    json.dump({"db": args.db, **figures}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
