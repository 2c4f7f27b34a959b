"""Scale-out benchmark (issue 4): the sweep spread over two Celery worker processes, and a
10,000-document batch close end to end, on PostgreSQL with Redis as broker; beside, in the
same run, the per-document loop and the plain-SQL floor of bench/sweep.py.

    .venv/bin/python bench/scale.py [--documents 200000] [--lines 5] [--batch 10000]

Needs PostgreSQL (BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/8). Creates and drops closeout_scale* databases.
Prints wall times, documents/s and lines/s, and the peak RSS of each worker process.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sweep as single
from proc import Watched

PG_SERVER = single.PG_SERVER
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/8")
DB = os.environ.get("BENCH_DB_PREFIX", "closeout") + "_scale"
CELERY = Path(sys.executable).with_name("celery")


class Worker(Watched):
    """A Celery worker process and the peak RSS seen while it ran."""

    def __init__(self, name: str, queue: str, database_url: str) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": REDIS_URL,
            "CLOSEOUT_QUEUE": queue,
        }
        args = [str(CELERY), "-A", "closeout.celery", "worker", "--pool=solo", "--concurrency=1"]
        args += [f"--hostname={name}@%h", "-Q", queue, "--without-gossip", "--without-mingle"]
        args += ["--without-heartbeat", "--loglevel=WARNING"]
        super().__init__(
            args, env=env, log=Path(tempfile.gettempdir()) / f"closeout-bench-{name}.log"
        )
        self.name = name


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--ready-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loop-sample", type=int, default=2000)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    names = {"main": DB, "loop": f"{DB}_loop", "raw": f"{DB}_raw"}
    for name in names.values():
        single._pg_admin(f"DROP DATABASE IF EXISTS {name}")
    single._pg_admin(f"CREATE DATABASE {DB}")
    url = f"{PG_SERVER}/{DB}"
    workers: list[Worker] = []
    try:
        print(f"generating {args.documents:,} purchase orders × {args.lines} lines ...")
        gen = single._child("generate", url, args, {})
        for copy in ("loop", "raw"):
            single._pg_admin(f"CREATE DATABASE {names[copy]} TEMPLATE {DB}")
        loop = single._child("loop", f"{PG_SERVER}/{names['loop']}", args, {})
        raw = single._child("raw", f"{PG_SERVER}/{names['raw']}", args, {})

        os.environ["DATABASE_URL"] = url
        os.environ["CELERY_BROKER_URL"] = REDIS_URL
        queue = f"closeout-bench-{uuid.uuid4().hex[:8]}"
        os.environ["CLOSEOUT_QUEUE"] = queue
        single._django()
        from closeout.celery import app
        from closeout.closing.models import SweepRun

        workers = [Worker(f"w{i}", queue, url) for i in range(1, args.workers + 1)]
        time.sleep(3)  # let the workers connect
        started = time.perf_counter()
        for _ in workers:
            app.send_task("closeout.sweep", args=("purchase_order",))
        _wait(
            lambda: SweepRun.objects.filter(finished_at__isnull=False).count() >= len(workers),
            3600,
            "the sweep",
        )
        sweep_seconds = time.perf_counter() - started
        runs = list(SweepRun.objects.all())
        closed = sum(r.closed for r in runs)
        lines = sum(r.lines_closed for r in runs)

        batch = _batch_close(args, url)
        from closeout.audit.services import audit_chain_verify

        intact = audit_chain_verify().intact
    finally:
        for worker in workers:
            worker.stop()
        from django.db import connections

        connections.close_all()
        for name in names.values():
            single._pg_admin(f"DROP DATABASE IF EXISTS {name}")

    loop_rate = loop["sample"] / loop["seconds"]
    print(
        f"\n== PostgreSQL, {args.workers} Celery workers (Redis broker), "
        f"{args.documents:,} purchase orders × {args.lines} lines, {args.ready_share:.0%} ready; "
        f"gen-data {gen['seconds']:.1f} s"
    )
    print(
        f"  sweep over {args.workers} workers  {sweep_seconds:8.2f} s  "
        f"{args.documents / sweep_seconds:9,.0f} docs/s examined  "
        f"{closed / sweep_seconds:9,.0f} closed docs/s  {lines / sweep_seconds:10,.0f} lines/s  "
        f"(closed {closed:,} docs / {lines:,} lines; {len(runs)} sweep runs)"
    )
    print(
        f"  batch close of {batch['documents']:,}  {batch['seconds']:8.2f} s end to end "
        f"(create {batch['create']:.2f} s, preview {batch['preview']:.2f} s, "
        f"run {batch['run']:.2f} s)  {batch['documents'] / batch['run']:,.0f} docs/s; "
        f"closed {batch['closed']:,}"
    )
    print(
        f"  per-doc ORM loop      {loop_rate:9,.0f} docs/s (sample {loop['sample']:,}) → "
        f"{args.documents / loop_rate:,.0f} s extrapolated"
    )
    print(f"  raw SQL floor         {raw['seconds']:8.2f} s")
    print(
        f"  sweep vs loop {args.documents / loop_rate / sweep_seconds:.0f}×, "
        f"sweep vs raw SQL {sweep_seconds / raw['seconds']:.2f}× the floor; "
        f"audit chain {'intact' if intact else 'BROKEN'}"
    )
    for worker in workers:
        print(f"  peak RSS {worker.name}: {worker.peak_mb:.0f} MB")


def _batch_close(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Generate `--batch` more ready documents, then close them with one batch job run by the
    workers, from creation to the last document."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model

    from closeout.access.models import Role
    from closeout.access.services import grant_create
    from closeout.batches.models import BatchJob, BatchState
    from closeout.batches.services import batch_create, batch_preview, batch_start
    from closeout.core.models import OrgUnit
    from closeout.demo.bulk import generate_documents
    from closeout.documents.models import Document

    generate_documents(
        documents=args.batch,
        lines_per_document=args.lines,
        ready_share=Decimal(1),
        seed=args.seed + 1,
        prefix="BAT",
        org_code="BAT",
    )
    user = get_user_model().objects.create_user("bench-buyer")
    grant_create(
        actor=None,
        user=user,
        role=Role.objects.get(code="operator"),
        org_unit=OrgUnit.objects.get(code="BAT"),
    )
    numbers = list(
        Document.objects.filter(number__startswith="BAT-").values_list("number", flat=True)
    )
    t0 = time.perf_counter()
    job = batch_create(
        actor=user,
        action="close",
        doc_type="purchase_order",
        numbers=numbers,
        reason_code="completed",
    )
    t1 = time.perf_counter()
    job = batch_preview(actor=user, job=job)
    t2 = time.perf_counter()
    batch_start(actor=user, job=job, workers=args.workers)
    _wait(lambda: BatchJob.objects.get(pk=job.pk).state == BatchState.DONE, 3600, "the batch")
    t3 = time.perf_counter()
    job.refresh_from_db()
    return {
        "documents": job.total,
        "closed": job.succeeded,
        "create": t1 - t0,
        "preview": t2 - t1,
        "run": t3 - t2,
        "seconds": t3 - t0,
    }


if __name__ == "__main__":
    main()
