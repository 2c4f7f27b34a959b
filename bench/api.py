"""API throughput against the production server (`closeout serve`, gunicorn) on PostgreSQL:
business events posted in batches of 1,000 (events/s), and single close requests (requests/s).

    .venv/bin/python bench/api.py            # 1,000 POs × 5 lines: 5,000 events, 300 closes
    .venv/bin/python bench/api.py --documents 500 --closes 200 --clients 4

Creates a fresh database `closeout_bench_api` (dropped at the end), migrates, creates an
organisation unit, an admin user with an API token and purchase orders (through the services),
starts `closeout serve` on a free port, then times over HTTP:
  (a) POST /api/events, 1,000 receipts per call, one call at a time (each event in its own
      transaction, idempotent by external id, hash-chained audit event each);
  (b) POST /api/documents/purchase_order/{n}/close-requests, one document per call, from
      --clients threads; no approval route applies, so each request closes its document.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DB = "closeout_bench_api"
PYTHON = str(ROOT / ".venv/bin/python")
CLOSEOUT = str(ROOT / ".venv/bin/closeout")


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{SERVER}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SETUP = r"""
import django, json, sys
django.setup()
from datetime import date
from decimal import Decimal
from django.contrib.auth.models import User
from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.api.services import api_token_create
from closeout.core.services import org_unit_get_or_create
from closeout.documents.services import LineInput, document_upsert
n, lines = int(sys.argv[1]), int(sys.argv[2])
org = org_unit_get_or_create(code="BENCH", name="bench")
user = User.objects.create_user("bench", password="x")
grant_create(actor=None, user=user, role=Role.objects.get(code="admin"), org_unit=org,
             reason="bench")
for i in range(n):
    document_upsert(actor=None, doc_type="purchase_order", number=f"B{i:07d}", org_unit=org,
        document_date=date(2025, 1, 1),
        lines=[LineInput(line_no=k, planned_qty=Decimal(10), unit_price=Decimal("2.5"))
               for k in range(1, lines + 1)])
print(json.dumps({"token": api_token_create(actor=None, user=user).raw}))
"""


def call(base: str, token: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 (local server)
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--closes", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    psql(f"DROP DATABASE IF EXISTS {DB}")
    psql(f"CREATE DATABASE {DB}")
    var = Path(tempfile.mkdtemp(prefix="closeout_bench_api_"))
    env = {
        **os.environ,
        "DATABASE_URL": f"{SERVER}/{DB}",
        "CLOSEOUT_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "closeout.settings",
        "CLOSEOUT_API_RATE_PER_MINUTE": "1000000",
        "CELERY_BROKER_URL": "",
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([CLOSEOUT, "migrate", "-v", "0"], env=env, check=True)
        started = time.perf_counter()
        out = subprocess.run(
            [PYTHON, "-c", SETUP, str(args.documents), str(args.lines)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        token = json.loads(out.strip().splitlines()[-1])["token"]
        print(
            f"setup: {args.documents} POs × {args.lines} lines in "
            f"{time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        server = subprocess.Popen(
            [CLOSEOUT, "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/openapi.json", timeout=2)  # noqa: S310
                break
            except OSError:
                time.sleep(0.2)
        # Receipts are the only thing these companies track: switch the invoice rules off.
        off = {"enabled": False}
        status, _ = call(
            base,
            token,
            "PATCH",
            "/api/policies/purchase_order",
            {"rule_settings": {"invoice_qty_match": off, "invoice_amount_match": off, "paid": off}},
        )
        if status != 200:
            raise SystemExit(f"policy change refused: HTTP {status}")

        # (a) events in batches of 1,000: one receipt per line (completes every line).
        events = [
            {
                "doc_type": "purchase_order",
                "number": f"B{i:07d}",
                "kind": "receipt",
                "external_id": f"R-{i}-{k}",
                "line_no": k,
                "quantity": "10",
                "occurred_at": "2025-02-01T08:00:00+08:00",
            }
            for i in range(args.documents)
            for k in range(1, args.lines + 1)
        ]
        started = time.perf_counter()
        applied = 0
        for start in range(0, len(events), 1000):
            status, body = call(
                base, token, "POST", "/api/events", {"events": events[start : start + 1000]}
            )
            if status != 200:
                raise SystemExit(f"events refused: HTTP {status} {body}")
            applied += body["counts"].get("applied", 0)
        seconds = time.perf_counter() - started
        print(
            f"(a) events: {applied} applied in {seconds:.1f} s = {applied / seconds:,.0f} events/s "
            f"(batches of 1,000, one call at a time)"
        )

        # (b) single close requests, --clients threads.
        numbers = [f"B{i:07d}" for i in range(min(args.closes, args.documents))]
        lock = threading.Lock()
        outcomes: dict[int, int] = {}

        def worker(share: list[str]) -> None:
            for number in share:
                status, _ = call(
                    base,
                    token,
                    "POST",
                    f"/api/documents/purchase_order/{number}/close-requests",
                    {"reason": "completed"},
                )
                with lock:
                    outcomes[status] = outcomes.get(status, 0) + 1

        threads = [
            threading.Thread(target=worker, args=(numbers[i :: args.clients],))
            for i in range(args.clients)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        print(
            f"(b) close requests: {len(numbers)} in {seconds:.1f} s = "
            f"{len(numbers) / seconds:,.1f} requests/s ({args.clients} clients, "
            f"{args.workers} gunicorn workers); statuses {outcomes}"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        time.sleep(0.5)
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        shutil.rmtree(var, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
