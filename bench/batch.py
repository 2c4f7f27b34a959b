"""Batch-job benchmark: close N ready documents with one batch job run in this process.

    .venv/bin/python bench/batch.py [--documents 10000] [--lines 5] [--background 50000]
                                    [--chunk-size 500] [--profile]

PostgreSQL (BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432): creates the database
<BENCH_DB_PREFIX or closeout>_batch_bench and drops it at the end. Generates `--background`
other purchase orders (so the tables are not tiny) and `--documents` ready ones, then times
`batch_create`, `batch_preview` and the run (`batch_run`, one worker, no broker), prints the
per-phase seconds, documents/s, the audit chain verdict and this process's peak RSS.
`--profile` prints the top of a cProfile of the run.
"""

import argparse
import cProfile
import os
import pstats
import resource
import tempfile
import time
from decimal import Decimal

SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB_PREFIX", "closeout") + "_batch_bench"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--background", type=int, default=50_000)
    parser.add_argument("--chunk-size", type=int, default=0, help="items per chunk (RUN_CHUNK)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    _admin(f"DROP DATABASE IF EXISTS {DB}")
    _admin(f"CREATE DATABASE {DB}")
    try:
        with tempfile.TemporaryDirectory(prefix="closeout_batch_bench_") as var:
            os.environ["CLOSEOUT_VAR_DIR"] = var  # audit keys and checkpoints of this database
            _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        _admin(f"DROP DATABASE IF EXISTS {DB}")


def _run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from closeout.access.models import Role
    from closeout.access.services import grant_create
    from closeout.audit.services import audit_chain_verify
    from closeout.batches import execute, services
    from closeout.batches.models import BatchJob
    from closeout.core.models import OrgUnit
    from closeout.demo.bulk import generate_documents
    from closeout.documents.models import Document

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    if args.background:
        generate_documents(
            documents=args.background,
            lines_per_document=args.lines,
            ready_share=Decimal("0.5"),
            seed=1,
        )
    generate_documents(
        documents=args.documents,
        lines_per_document=args.lines,
        ready_share=Decimal(1),
        seed=2,
        prefix="BAT",
        org_code="BAT",
    )
    generated = args.background + args.documents
    print(f"generated {generated:,} documents in {time.perf_counter() - t0:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    user = get_user_model().objects.create_user("bench-batch")
    grant_create(
        actor=None,
        user=user,
        role=Role.objects.get(code="operator"),
        org_unit=OrgUnit.objects.get(code="BAT"),
    )
    numbers = list(
        Document.objects.filter(number__startswith="BAT-").values_list("number", flat=True)
    )
    if args.chunk_size:
        execute.RUN_CHUNK = args.chunk_size
    t0 = time.perf_counter()
    job = services.batch_create(
        actor=user,
        action="close",
        doc_type="purchase_order",
        numbers=numbers,
        reason_code="completed",
    )
    t1 = time.perf_counter()
    job = services.batch_preview(actor=user, job=job)
    t2 = time.perf_counter()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    with override_settings(CLOSEOUT_TASKS_INLINE=True, CELERY_BROKER_URL=""):
        services.batch_start(actor=user, job=job, workers=1)  # runs inline: one worker
    if profiler:
        profiler.disable()
    t3 = time.perf_counter()
    job = BatchJob.objects.get(pk=job.pk)
    assert job.started_at and job.finished_at  # noqa: S101
    run_s = (job.finished_at - job.started_at).total_seconds()
    print(
        f"batch close of {job.total:,} documents × {args.lines} lines: create {t1 - t0:.2f} s, "
        f"preview {t2 - t1:.2f} s, run {run_s:.2f} s ({job.total / run_s:,.0f} documents/s; "
        f"started → finished), {t3 - t2:.2f} s with the post-close verification run inline; "
        f"{job.succeeded:,} closed, {job.failed:,} failed, {job.skipped:,} skipped; {job.state}"
    )
    verdict = audit_chain_verify()
    print(f"audit chain {'intact' if verdict.intact else 'BROKEN'} ({verdict.checked:,} events)")
    print(f"peak RSS {_rss_mb():.0f} MB")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats("closeout", 45)


if __name__ == "__main__":
    main()
