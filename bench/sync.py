"""Bulk ERP sync through the REST API against `closeout serve` (issue 13 §2).

    .venv/bin/python bench/sync.py [--lines 1000000] [--stream-seconds 60]
    .venv/bin/python bench/sync.py --adventureworks ../shared/datasets/adventureworks

Against the database of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/h_sync),
migrated first; each run uses numbers of its own (a run prefix), so runs can follow each other.
It starts `closeout serve` (gunicorn, --workers), creates an organisation unit, an integration
user and an API token, then measures:

1. **first load**: `--lines` synthetic purchase-order lines (`--lines-per-document` each) pushed
   with POST /api/documents/bulk (`--doc-batch` documents per call, `--clients` calls at a
   time), then a receipt for `--receipt-share` of the lines with POST /api/events/bulk;
2. **steady stream**: one client posting `--stream-batch` events per call for
   `--stream-seconds`: events/s and the p50/p95 latency of a call;
3. with `--adventureworks DIR`: examples/adventureworks_sync.py end to end (its own figures).

Prints the figures, the peak RSS of the server (all its processes) and of this client, and
the load average (`uptime`) before and after.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import psutil
from proc import Watched

ROOT = Path(__file__).resolve().parents[1]
CLOSEOUT = Path(sys.executable).with_name("closeout")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/h_sync"
DOC = "purchase_order"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


class Server(Watched):
    """`closeout serve` in the background, and the peak RSS of its process tree."""

    def __init__(self, database_url: str, port: int, workers: int) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CLOSEOUT_API_RATE_PER_MINUTE": "10000000",
        }
        self.url = f"http://127.0.0.1:{port}"
        super().__init__(
            [str(CLOSEOUT), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            log=Path("/tmp") / f"closeout-bench-sync-{port}.log",  # noqa: S108
            interval=0.2,
        )
        deadline = time.time() + 300  # a loaded machine takes long to import
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/api/openapi.json", timeout=30).read()  # noqa: S310
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("closeout serve did not answer within 300 s")

    def stop(self, timeout: float = 20) -> None:
        super().stop(timeout)


def recreate(database_url: str) -> None:
    """Drop and create the database (--fresh): a first load starts from an empty database."""
    import psycopg

    base, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


def prepare(database_url: str, prefix: str) -> str:
    """Migrate; an organisation unit, an integration user and its token (printed back)."""
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([str(CLOSEOUT), "migrate", "--no-input", "-v0"], env=env, check=True)
    code = f"""
from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.api.services import api_token_create
from closeout.core.models import OrgUnit
from closeout.core.services import org_unit_get_or_create
from django.contrib.auth.models import User
unit = org_unit_get_or_create(code="BENCH-SYNC", name="bench sync")
user, created = User.objects.get_or_create(username="bench-sync-{prefix}")
grant_create(actor=None, user=user, role=Role.objects.get(code="admin"), org_unit=unit,
             reason="bench")
print(api_token_create(actor=None, user=user, name="bench").raw)
"""
    out = subprocess.run(
        [str(CLOSEOUT), "shell", "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def call(base: str, token: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        return json.loads(response.read())


def _document(prefix: str, n: int, lines: int) -> dict[str, Any]:
    return {
        "doc_type": DOC,
        "number": f"{prefix}-{n:07d}",
        "org_unit": "BENCH-SYNC",
        "document_date": "2026-01-10",
        "source_system": f"bench-{prefix}",
        "external_id": str(n),
        "lines": [
            {
                "line_no": k,
                "planned_qty": "10",
                "unit_price": "2.5",
                "item": f"BENCH-ITEM-{(n * lines + k) % 500}",
            }
            for k in range(1, lines + 1)
        ],
    }


def _event(prefix: str, n: int, line_no: int, tag: str) -> dict[str, Any]:
    return {
        "doc_type": DOC,
        "number": f"{prefix}-{n:07d}",
        "kind": "receipt",
        "external_id": f"{prefix}-{tag}-{n}-{line_no}",
        "line_no": line_no,
        "quantity": "1",
        "occurred_at": "2026-02-01T10:00:00+08:00",
        "source_system": f"bench-{prefix}",
    }


def _parallel(clients: int, jobs: list[Any], run: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    with ThreadPoolExecutor(clients) as pool:
        for answer in pool.map(run, jobs):
            for outcome, count in answer["counts"].items():
                counts[outcome] = counts.get(outcome, 0) + count
    return counts


def first_load(args: argparse.Namespace, base: str, token: str, prefix: str) -> None:
    documents = args.lines // args.lines_per_document
    batches = [
        list(range(start, min(start + args.doc_batch, documents)))
        for start in range(0, documents, args.doc_batch)
    ]
    started = time.perf_counter()
    counts = _parallel(
        args.clients,
        batches,
        lambda ns: call(
            base,
            token,
            "/api/documents/bulk",
            {"documents": [_document(prefix, n, args.lines_per_document) for n in ns]},
        ),
    )
    seconds = time.perf_counter() - started
    print(
        f"first load, documents: {documents:,} documents / {documents * args.lines_per_document:,}"
        f" lines in {seconds:.1f} s = {documents / seconds:,.0f} documents/s, "
        f"{documents * args.lines_per_document / seconds:,.0f} lines/s {counts}"
    )
    step = max(1, round(1 / args.receipt_share)) if args.receipt_share else 0
    if not step:
        return
    events = [
        (n, k)
        for n in range(documents)
        for k in range(1, args.lines_per_document + 1)
        if (n * args.lines_per_document + k) % step == 0
    ]
    batches_ev = [events[i : i + args.event_batch] for i in range(0, len(events), args.event_batch)]
    started = time.perf_counter()
    counts = _parallel(
        args.clients,
        batches_ev,
        lambda b: call(
            base, token, "/api/events/bulk", {"events": [_event(prefix, n, k, "L") for n, k in b]}
        ),
    )
    seconds = time.perf_counter() - started
    print(
        f"first load, receipts: {len(events):,} events in {seconds:.1f} s = "
        f"{len(events) / seconds:,.0f} events/s {counts}"
    )


def stream(args: argparse.Namespace, base: str, token: str, prefix: str) -> None:
    documents = args.lines // args.lines_per_document
    latencies: list[float] = []
    sent, i = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.stream_seconds:
        batch = []
        for _ in range(args.stream_batch):
            n, k = (i * 7919) % documents, 1 + i % args.lines_per_document
            batch.append(_event(prefix, n, k, f"S{i}"))
            i += 1
        t0 = time.perf_counter()
        answer = call(base, token, "/api/events/bulk", {"events": batch})
        latencies.append(time.perf_counter() - t0)
        sent += answer["counts"].get("applied", 0)
    seconds = time.perf_counter() - started
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else latencies[0]
    print(
        f"steady stream: {sent:,} events in {seconds:.1f} s = {sent / seconds:,.0f} events/s, "
        f"{args.stream_batch} per call, latency p50 {statistics.median(latencies) * 1000:.0f} ms,"
        f" p95 {p95 * 1000:.0f} ms ({len(latencies)} calls)"
    )


def adventureworks(args: argparse.Namespace, base: str, token: str, prefix: str) -> None:
    checkpoint = Path("/tmp") / f"aw-bench-{prefix}.json"  # noqa: S108
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/adventureworks_sync.py"),
            "--base-url", base,
            "--token", token,
            "--data-dir", args.adventureworks,
            "--org-unit", "BENCH-SYNC",
            "--checkpoint", str(checkpoint),
            "--configure-policy",
            "--parallel", str(args.clients),
        ],
        check=True,
    )  # fmt: skip
    print(f"adventureworks_sync.py end to end (with the dry-run sweep): "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    checkpoint.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--lines-per-document", type=int, default=5)
    parser.add_argument("--doc-batch", type=int, default=1000)
    parser.add_argument("--event-batch", type=int, default=1000)
    parser.add_argument("--receipt-share", type=float, default=0.2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--stream-seconds", type=float, default=60)
    parser.add_argument("--stream-batch", type=int, default=50)
    parser.add_argument("--adventureworks", default=None, help="AdventureWorks CSV folder")
    parser.add_argument("--skip-load", action="store_true", help="only the other parts")
    parser.add_argument("--fresh", action="store_true", help="drop and create the database first")
    args = parser.parse_args()
    prefix = uuid.uuid4().hex[:6].upper()
    print(f"load before: {uptime()}", flush=True)
    if args.fresh:
        recreate(args.database_url)
    token = prepare(args.database_url, prefix)
    server = Server(args.database_url, args.port, args.workers)
    try:
        if args.adventureworks:
            adventureworks(args, server.url, token, prefix)
        if not args.skip_load:
            first_load(args, server.url, token, prefix)
            if args.stream_seconds > 0:
                stream(args, server.url, token, prefix)
    finally:
        server.stop()
    client_mb = psutil.Process().memory_info().rss / 1e6
    print(f"peak RSS: server {server.peak_mb:.0f} MB ({args.workers} workers and the master), "
          f"this client {client_mb:.0f} MB")  # fmt: skip
    print(f"load after: {uptime()}", flush=True)


if __name__ == "__main__":
    main()
