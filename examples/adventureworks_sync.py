"""Push AdventureWorks purchase orders into closeout through its REST API, as an ERP
integration would, then ask for a dry-run sweep and print the outcome per rule.

Data: Microsoft's AdventureWorks sample (MIT License, Copyright (c) Microsoft Corporation):
PurchaseOrderHeader.csv, PurchaseOrderDetail.csv, Vendor.csv and (optional) Product.csv in
--data-dir (the full set is in ../shared/datasets/adventureworks/, a 150-order subset ships in
src/closeout/demo_data/).

What it sends, in this order, each step resumable from a checkpoint file:
  1. (with --configure-policy) PATCH /api/policies/purchase_order switching off the invoice and
     payment rules, for a company that does not track invoices or payments in closeout
     (needs `policy.manage`; otherwise an administrator makes the same change in the admin);
  2. the vendors of those orders: PUT /api/partners/{AccountNumber};
  3. the orders with their lines, up to 1,000 per call: POST /api/documents/bulk (an upsert per
     item, by type and number; a closed document is answered `document_locked` in its item and
     reported, not retried);
  4. receipts (ReceivedQty) and rejections (RejectedQty, posted as returns) up to 1,000 per
     call: POST /api/events/bulk, posted set-based;
  each call with an Idempotency-Key made from its content, so a retried batch is answered from
  the first attempt and posts nothing twice (each event also has its own external id);
  5. POST /api/sweep/dry-run and a table of outcomes per rule.

It prints the figures of steps 2-4: documents and events per second, and the whole sync's time.

Only the standard library (urllib). The organisation unit (--org-unit) must exist in closeout
and the token's user needs `document.sync` there (role "integration").

    python examples/adventureworks_sync.py --base-url http://127.0.0.1:8000 \\
        --token "$CLOSEOUT_TOKEN" --data-dir ../shared/datasets/adventureworks \\
        --org-unit HQ --configure-policy
"""

import argparse
import csv
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SOURCE = "adventureworks"
DOC = "purchase_order"
RETRIES = 5


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body.get('message', body)}")
        self.status, self.body = status, body


class Client:
    def __init__(self, base_url: str, token: str, timeout: float = 600) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(
        self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in range(1, RETRIES + 1):
            request = urllib.request.Request(  # noqa: S310 (the operator gives the URL)
                self.base + path, data=data, method=method, headers=headers
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                payload = _json(exc.read())
                if exc.code == 429 or (exc.code >= 500 and attempt < RETRIES):
                    time.sleep(float(exc.headers.get("Retry-After") or attempt))
                    continue
                raise ApiError(exc.code, payload) from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if attempt == RETRIES:
                    raise
                time.sleep(attempt)
        raise RuntimeError("unreachable")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {"message": raw[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"message": str(value)}


def read_table(data_dir: Path, name: str) -> list[dict[str, str]]:
    path = data_dir / f"{name}.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


class Checkpoint:
    """What is done already, saved after every step, so an interrupted run resumes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, Any] = (
            json.loads(path.read_text()) if path.exists() else {"vendors": [], "documents": []}
        )
        self.state.setdefault("event_batches", [])
        self.state.setdefault("policy", False)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.path)


def day(value: str) -> str:
    return value[:10]


def moment(value: str) -> str:
    """AdventureWorks times have no zone; they are taken as UTC."""
    return value[:19].replace(" ", "T") + "+00:00"


def number_of(po_id: str) -> str:
    return f"PO{int(po_id):06d}"


def build(data_dir: Path, limit: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    headers = read_table(data_dir, "PurchaseOrderHeader")
    headers.sort(key=lambda h: int(h["PurchaseOrderID"]))
    if limit is not None:
        headers = headers[:limit]
    wanted = {h["PurchaseOrderID"] for h in headers}
    details: dict[str, list[dict[str, str]]] = {}
    for row in read_table(data_dir, "PurchaseOrderDetail"):
        if row["PurchaseOrderID"] in wanted:
            details.setdefault(row["PurchaseOrderID"], []).append(row)
    vendors = {v["BusinessEntityID"]: v for v in read_table(data_dir, "Vendor")}
    products = {p["ProductID"]: p for p in read_table(data_dir, "Product")}
    orders = []
    for header in headers:
        rows = sorted(
            details.get(header["PurchaseOrderID"], []),
            key=lambda r: int(r["PurchaseOrderDetailID"]),
        )
        if not rows:
            continue
        orders.append({"header": header, "lines": rows})
    return orders, {"vendors": vendors, "products": products}


def _key(prefix: str, batch: list[dict[str, Any]]) -> str:
    """The Idempotency-Key of a batch: the same batch sent again is answered from the first."""
    digest = hashlib.sha256(json.dumps(batch, sort_keys=True).encode()).hexdigest()[:32]
    return f"{prefix}-{digest}"


def by_document(events: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Batches of at most `size` events that never split a document's events: batches sent at
    the same time touch different documents, and a line's receipt still comes before its
    return."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        groups.setdefault(event["number"], []).append(event)
    batches: list[list[dict[str, Any]]] = [[]]
    # A document with more events than a batch holds is split (its parts may then race).
    parts = [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]
    for group in parts:
        if batches[-1] and len(batches[-1]) + len(group) > size:
            batches.append([])
        batches[-1].extend(group)
    return [b for b in batches if b]


def _rate(count: int, seconds: float) -> dict[str, float]:
    return {
        "count": count,
        "seconds": round(seconds, 2),
        "per_second": round(count / seconds, 1) if seconds else 0.0,
    }


def _document_body(
    order: dict[str, Any],
    args: argparse.Namespace,
    vendor_codes: dict[str, str],
    master: dict[str, Any],
) -> dict[str, Any]:
    header = order["header"]
    lines = []
    for line_no, row in enumerate(order["lines"], start=1):
        product = master["products"].get(row["ProductID"], {})
        lines.append(
            {
                "line_no": line_no,
                "planned_qty": row["OrderQty"],
                "unit_price": row["UnitPrice"],
                "item": product.get("ProductNumber") or f"AW-{row['ProductID']}",
                "item_name": product.get("Name", ""),
            }
        )
    due = order["lines"][0]["DueDate"]
    return {
        "doc_type": DOC,
        "number": number_of(header["PurchaseOrderID"]),
        "org_unit": args.org_unit,
        "document_date": day(header["OrderDate"]),
        "expected_date": day(due) if due else None,
        "partner": vendor_codes.get(header["VendorID"], ""),
        "currency": "USD",
        "exchange_rate": args.usd_rate,
        "source_system": SOURCE,
        "external_id": header["PurchaseOrderID"],
        "lines": lines,
    }


def sync(args: argparse.Namespace) -> dict[str, Any]:
    begun = time.perf_counter()
    client = Client(args.base_url, args.token)
    checkpoint = Checkpoint(Path(args.checkpoint))
    orders, master = build(Path(args.data_dir), args.limit)
    report: dict[str, Any] = {
        "orders": len(orders),
        "locked": [],
        "events": Counter(),
        "timings": {},
    }
    say = print if not args.quiet else (lambda *a, **k: None)

    if args.configure_policy and not checkpoint.state["policy"]:
        off = {"enabled": False}
        client.call(
            "PATCH",
            f"/api/policies/{DOC}",
            {
                "rule_settings": {
                    "invoice_qty_match": off,
                    "invoice_amount_match": off,
                    "paid": off,
                }
            },
        )
        checkpoint.state["policy"] = True
        checkpoint.save()
        say("policy: invoice and payment rules switched off for purchase orders")

    done_vendors = set(checkpoint.state["vendors"])
    vendor_codes: dict[str, str] = {}
    vendors_todo: dict[str, dict[str, str]] = {}
    for order in orders:
        vendor = master["vendors"].get(order["header"]["VendorID"])
        if vendor is None:
            continue
        code = vendor["AccountNumber"]
        vendor_codes[order["header"]["VendorID"]] = code
        if code not in done_vendors:
            vendors_todo[code] = vendor

    def push_vendor(code: str) -> str:
        vendor = vendors_todo[code]
        client.call(
            "PUT",
            f"/api/partners/{code}",
            {"name": vendor["Name"], "kind": "supplier", "active": vendor["ActiveFlag"] == "1"},
        )
        return code

    # One small PUT each, independent of each other: --parallel at a time.
    with ThreadPoolExecutor(args.parallel) as pool:
        for code in pool.map(push_vendor, vendors_todo):
            done_vendors.add(code)
            checkpoint.state["vendors"] = sorted(done_vendors)
            checkpoint.save()
    say(f"vendors: {len(done_vendors)} synced")

    started = time.perf_counter()
    done_docs = set(checkpoint.state["documents"])
    bodies = [_document_body(order, args, vendor_codes, master) for order in orders]
    todo = [b for b in bodies if b["number"] not in done_docs]
    batches = [todo[i : i + args.doc_batch_size] for i in range(0, len(todo), args.doc_batch_size)]

    def push_documents(batch: list[dict[str, Any]]) -> Any:
        key = _key("aw-docs", batch)
        return client.call("POST", "/api/documents/bulk", {"documents": batch}, idempotency_key=key)

    with ThreadPoolExecutor(args.parallel) as pool:
        for batch, (_status, answer) in zip(
            batches, pool.map(push_documents, batches), strict=True
        ):
            for result in answer["results"]:
                if result["code"] == "document_locked":
                    report["locked"].append(result["number"])  # closed in closeout: refused
                elif result["outcome"] == "rejected":
                    raise ApiError(409, {"message": f"{result['number']}: {result['reason']}"})
            done_docs.update(b["number"] for b in batch)
            checkpoint.state["documents"].extend(b["number"] for b in batch)
            checkpoint.save()
    report["timings"]["documents"] = _rate(len(todo), time.perf_counter() - started)
    say(f"documents: {len(done_docs)} synced, {len(report['locked'])} locked (closed)")

    events: list[dict[str, Any]] = []
    for order in orders:
        number = number_of(order["header"]["PurchaseOrderID"])
        for line_no, row in enumerate(order["lines"], start=1):
            when = moment(row["ModifiedDate"])
            common = {"doc_type": DOC, "number": number, "line_no": line_no, "occurred_at": when}
            received, rejected = row["ReceivedQty"], row["RejectedQty"]
            if float(received or 0) > 0:
                events.append(
                    {
                        **common,
                        "kind": "receipt",
                        "external_id": f"AW-RCV-{row['PurchaseOrderDetailID']}",
                        "quantity": received,
                        "source_system": SOURCE,
                    }
                )
            if float(rejected or 0) > 0:
                events.append(
                    {
                        **common,
                        "kind": "return",
                        "external_id": f"AW-REJ-{row['PurchaseOrderDetailID']}",
                        "quantity": rejected,
                        "source_system": SOURCE,
                        "note": "rejected at inspection",
                    }
                )
    started, sent = time.perf_counter(), 0
    done_batches = set(checkpoint.state["event_batches"])
    pending = [
        (key, batch)
        for batch in by_document(events, args.batch_size)
        if (key := _key("aw-events", batch)) not in done_batches
    ]

    def push_events(job: tuple[str, list[dict[str, Any]]]) -> Any:
        key, batch = job
        return client.call("POST", "/api/events/bulk", {"events": batch}, idempotency_key=key)

    with ThreadPoolExecutor(args.parallel) as pool:
        for (key, batch), (_status, body) in zip(
            pending, pool.map(push_events, pending), strict=True
        ):
            sent += len(batch)
            report["events"].update(body["counts"])
            for result in body["results"]:
                if result["outcome"] == "rejected":
                    print(
                        f"rejected event {result['external_id']}: {result['reason']}",
                        file=sys.stderr,
                    )
            done_batches.add(key)
            checkpoint.state["event_batches"] = sorted(done_batches)
            checkpoint.save()
    report["timings"]["events"] = _rate(sent, time.perf_counter() - started)
    say(
        "events: " + ", ".join(f"{k} {v}" for k, v in sorted(report["events"].items()))
        or "none new"
    )

    report["timings"]["sync"] = round(time.perf_counter() - begun, 2)
    docs, evs = report["timings"]["documents"], report["timings"]["events"]
    say(
        f"figures: documents {docs['count']} in {docs['seconds']} s ({docs['per_second']}/s), "
        f"events {evs['count']} in {evs['seconds']} s ({evs['per_second']}/s), "
        f"whole sync (vendors, documents, events) {report['timings']['sync']} s"
    )
    _status, sweep = client.call("POST", "/api/sweep/dry-run", {"doc_type": DOC})
    report["sweep"] = sweep
    say(
        f"dry-run sweep: examined {sweep['examined']}, would close {sweep['would_close']}, "
        f"exception queue {sweep['exception_queue']}, blocked {sweep['blocked']}, "
        f"not yet due {sweep['not_due']}, warnings only {sweep['warning_only']}"
    )
    say("documents failing each rule:")
    for rule, count in sorted(sweep["rule_failures"].items(), key=lambda kv: (-kv[1], kv[0])):
        say(f"  {rule:<40} {count:>6}")
    report["events"] = dict(report["events"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("CLOSEOUT_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--token", default=os.environ.get("CLOSEOUT_TOKEN", ""))
    parser.add_argument("--data-dir", default="../shared/datasets/adventureworks")
    parser.add_argument("--org-unit", default="HQ", help="closeout organisation unit code")
    parser.add_argument("--limit", type=int, default=None, help="only the first N orders")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per call (≤ 1000)")
    parser.add_argument(
        "--doc-batch-size", type=int, default=500, help="documents per call (≤ 1000)"
    )
    parser.add_argument(
        "--parallel", type=int, default=1, help="calls at a time (2 on PostgreSQL; SQLite: 1)"
    )
    parser.add_argument("--checkpoint", default="adventureworks_sync.checkpoint.json")
    parser.add_argument("--usd-rate", default="7.1", help="USD → company currency rate")
    parser.add_argument("--configure-policy", action="store_true")
    parser.add_argument("--summary-json", default=None, help="also write the report here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or CLOSEOUT_TOKEN) is required: `closeout token create USER`")
    if not 1 <= args.batch_size <= 1000 or not 1 <= args.doc_batch_size <= 1000:
        parser.error("--batch-size and --doc-batch-size must be 1 to 1000")
    if not Path(args.data_dir, "PurchaseOrderHeader.csv").exists():
        parser.error(f"no PurchaseOrderHeader.csv in {args.data_dir}")
    try:
        report = sync(args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
