"""Profile the bulk ERP sync in one process (issue 13 §2): the AdventureWorks orders and events
posted through Django's test client to POST /api/documents/bulk and POST /api/events/bulk,
exactly the bodies `examples/adventureworks_sync.py` sends, with per-step times, queries and
the process's RSS, and optionally a cProfile of each step.

    .venv/bin/python bench/sync_profile.py [--data-dir ../shared/datasets/adventureworks]
        [--limit N] [--profile] [--resend]

Against DATABASE_URL (default postgres://postgres@127.0.0.1:5432/closeout_sync_profile), which
it drops and creates. `--resend` posts the same documents a second time (unchanged: the path a
nightly full re-send takes)."""

import argparse
import cProfile
import importlib.util
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/closeout_sync_profile"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("aw", ROOT / "examples/adventureworks_sync.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("examples/adventureworks_sync.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rss() -> float:
    return float(psutil.Process().memory_info().rss / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared/datasets/adventureworks"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--doc-batch", type=int, default=500)
    parser.add_argument("--event-batch", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--resend", action="store_true")
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
    base, _, name = url.rpartition("/")
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    os.environ["CLOSEOUT_API_RATE_PER_MINUTE"] = "10000000"
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from closeout.access.models import Role
    from closeout.access.services import grant_create
    from closeout.api.services import api_token_create
    from closeout.core.services import org_unit_get_or_create
    from closeout.documents.services import partner_sync

    call_command("migrate", verbosity=0)
    unit = org_unit_get_or_create(code="PROFILE", name="profile")
    user = User.objects.create(username="profile")
    grant_create(actor=None, user=user, role=Role.objects.get(code="admin"), org_unit=unit,
                 reason="bench")  # fmt: skip
    token = api_token_create(actor=None, user=user, name="profile").raw
    aw = _example()
    orders, master = aw.build(Path(args.data_dir), args.limit)
    codes: dict[str, str] = {}
    for order in orders:
        vendor = master["vendors"].get(order["header"]["VendorID"])
        if vendor is not None:
            codes[order["header"]["VendorID"]] = vendor["AccountNumber"]
            partner_sync(actor=user, code=vendor["AccountNumber"], name=vendor["Name"],
                         kind="supplier")  # fmt: skip
    options = argparse.Namespace(org_unit="PROFILE", usd_rate="7.1")
    bodies = [aw._document_body(order, options, codes, master) for order in orders]
    events: list[dict[str, Any]] = []
    for order in orders:
        number = aw.number_of(order["header"]["PurchaseOrderID"])
        for line_no, row in enumerate(order["lines"], start=1):
            common = {
                "doc_type": "purchase_order",
                "number": number,
                "line_no": line_no,
                "occurred_at": aw.moment(row["ModifiedDate"]),
                "source_system": aw.SOURCE,
            }
            detail = row["PurchaseOrderDetailID"]
            if float(row["ReceivedQty"] or 0) > 0:
                received = {"kind": "receipt", "quantity": row["ReceivedQty"]}
                events.append({**common, **received, "external_id": f"AW-RCV-{detail}"})
            if float(row["RejectedQty"] or 0) > 0:
                rejected = {"kind": "return", "quantity": row["RejectedQty"]}
                events.append({**common, **rejected, "external_id": f"AW-REJ-{detail}"})
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"RSS after setup: {_rss():.0f} MB")

    def step(label: str, path: str, key: str, batches: list[list[dict[str, Any]]]) -> None:
        profiler = cProfile.Profile() if args.profile else None
        counts: dict[str, int] = {}
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            for batch in batches:
                payload = json.dumps({key: batch})
                if profiler is not None:
                    profiler.enable()
                response = client.post(path, payload, content_type="application/json")
                if profiler is not None:
                    profiler.disable()
                if response.status_code != 200:
                    raise RuntimeError(response.content[:500].decode(errors="replace"))
                for outcome, count in response.json()["counts"].items():
                    counts[outcome] = counts.get(outcome, 0) + count
            seconds = time.perf_counter() - started
        items = sum(len(b) for b in batches)
        print(f"{label}: {items:,} in {seconds:.2f} s = {items / seconds:,.0f}/s, "
              f"{len(queries)} queries, {counts}, RSS {_rss():.0f} MB", flush=True)  # fmt: skip
        if profiler is not None:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
            out.write("\n")
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())

    doc_batches = [bodies[i : i + args.doc_batch] for i in range(0, len(bodies), args.doc_batch)]
    step("documents", "/api/documents/bulk", "documents", doc_batches)
    event_batches = aw.by_document(events, args.event_batch)
    step("events", "/api/events/bulk", "events", event_batches)
    if args.resend:
        step("documents re-sent unchanged", "/api/documents/bulk", "documents", doc_batches)
    print(f"peak RSS (ru_maxrss): {_peak():.0f} MB")


def _peak() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


if __name__ == "__main__":
    sys.exit(main())
