"""Batch undo benchmark (批量撤销): close N purchase orders in one batch, then undo that batch,
and print the time of each step.

    .venv/bin/python bench/undo.py [--documents 10000] [--lines 2]
                                   [--db-url postgres://postgres@127.0.0.1:5432/h_undo]
                                   [--dimension receiving] [--profile]

Runs against the database of `--db-url` (default: DATABASE_URL, else the PostgreSQL database
h_undo), which it migrates; the documents are new ones with a number prefix of their own, so
the database may hold other data. Steps: `closeout gen-data` (all ready to close; not timed
in the figures), a close batch of all of them run in this process (one worker), then the undo
job: created (its items read from the audit trail), previewed, and run (each document reopened
through the reopen route, its released quantities restored, one audit event each). At the end
it checks that every document is open again with nothing released, and that the audit chain
is intact. With `--dimension` the batch closes that dimension (关闭维度) of every line instead,
and the check adds that no dimension close is left; `--profile` prints where the undo run
spends its time.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

CLOSEOUT = Path(sys.executable).with_name("closeout")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument(
        "--dimension", default="", help="close this dimension (e.g. receiving) instead of whole"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print where the undo run spends its time"
    )
    parser.add_argument(
        "--db-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_undo"),
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.db_url
    prefix = f"UNDO{int(time.time())}_"
    subprocess.run([str(CLOSEOUT), "migrate", "-v0"], check=True)
    started = time.perf_counter()
    subprocess.run(
        [
            str(CLOSEOUT),
            "gen-data",
            f"--documents={args.documents}",
            f"--lines-per-document={args.lines}",
            "--ready-share=1",
            f"--prefix={prefix}",
            "--type=purchase_order",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"generated {args.documents:,} documents in {time.perf_counter() - started:.0f} s")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()
    _time(prefix, args.documents, profile=args.profile, dimension=args.dimension)


def _user() -> object:
    from django.contrib.auth import get_user_model

    from closeout.access.models import Role
    from closeout.access.services import grant_create
    from closeout.core.models import OrgUnit

    user, created = get_user_model().objects.get_or_create(username="bench-undo")
    if created:
        grant_create(
            actor=None,
            user=user,
            role=Role.objects.get(code="supervisor"),
            org_unit=OrgUnit.objects.get(code="GEN"),
        )
    return user


def _timed(label: str, work: object, count: int) -> object:
    t0 = time.perf_counter()
    result = work()  # type: ignore[operator]
    seconds = time.perf_counter() - t0
    print(f"{label}: {seconds:.2f} s ({count / seconds:,.0f} documents/s)")
    return result


def _time(prefix: str, count: int, *, profile: bool = False, dimension: str = "") -> None:
    from django.db import connection
    from django.test.utils import override_settings

    from closeout.audit.services import audit_chain_verify
    from closeout.batches.models import BatchAction, BatchJob
    from closeout.batches.services import batch_create, batch_preview, batch_start
    from closeout.batches.undo import batch_undo_create
    from closeout.documents.models import Document, Line

    user = _user()
    documents = Document.objects.filter(number__startswith=prefix)
    numbers = list(documents.order_by("pk").values_list("number", flat=True))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    def run(job: BatchJob) -> BatchJob:
        with override_settings(CLOSEOUT_TASKS_INLINE=True, CELERY_BROKER_URL=""):
            batch_start(actor=user, job=job, workers=1)
        job.refresh_from_db()
        return job

    close = batch_create(
        actor=user,
        action=BatchAction.CLOSE,
        doc_type="purchase_order",
        numbers=numbers,
        reason_code="completed",
        **({"dimension": dimension} if dimension else {}),
    )
    close = _timed("close batch (run)", lambda: run(close), count)
    print(f"  closed {close.succeeded:,} of {close.total:,}")
    undo = _timed("undo: create", lambda: batch_undo_create(actor=user, job_id=close.pk), count)
    undo = _timed("undo: preview", lambda: batch_preview(actor=user, job=undo), count)
    print(f"  preview {undo.predicted}")
    t0 = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        undo = profiler.runcall(lambda: _timed("undo: run", lambda: run(undo), count))
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    else:
        undo = _timed("undo: run", lambda: run(undo), count)
    total = time.perf_counter() - t0
    print(
        f"  undo #{undo.pk}: {undo.state}, {undo.succeeded:,} reopened, {undo.skipped:,} "
        f"skipped, {undo.failed:,} failed"
    )
    still_closed = documents.exclude(close_state="open").count()
    released = Line.objects.filter(document__in=documents, released_qty__gt=0).count()
    print(f"  check: {still_closed} not open, {released} lines still released ({total:.1f} s)")
    if dimension:
        from closeout.closing.models import LineDimensionClose

        rows = LineDimensionClose.objects.filter(document__in=documents).count()
        print(f"  check: {rows} dimension closes left")
    print(f"  audit chain intact: {audit_chain_verify().intact}")


if __name__ == "__main__":
    main()
