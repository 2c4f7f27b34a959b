"""The AdventureWorks sync client end to end against a live server: vendors, orders, receipts
and rejections pushed in batches; a rerun changes nothing; then a dry-run sweep per rule.

Data: the 150-order AdventureWorks subset shipped in closeout.demo_data (MIT License,
Copyright (c) Microsoft Corporation)."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import closeout.demo_data
from closeout.api.services import api_token_create
from closeout.audit.services import audit_chain_verify
from closeout.closing.models import ClosePolicy
from closeout.core.models import Partner
from closeout.documents.models import BusinessEvent, Document, Line
from tests.factories import org_tree, user_with_role

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(closeout.demo_data.__file__).parent
ORDERS = 40


def _client_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "aw_sync", ROOT / "examples/adventureworks_sync.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sync_pushes_orders_events_and_reports_rules(live_server: Any, tmp_path: Path) -> None:
    org_tree()
    user = user_with_role("erp-admin", "admin", org_tree().company)
    token = api_token_create(actor=None, user=user, name="aw").raw
    client = _client_module()
    checkpoint, summary = tmp_path / "cp.json", tmp_path / "summary.json"
    argv = [
        "--base-url", live_server.url,
        "--token", token,
        "--data-dir", str(DATA),
        "--org-unit", "HQ",
        "--limit", str(ORDERS),
        "--batch-size", "25",
        "--checkpoint", str(checkpoint),
        "--configure-policy",
        "--summary-json", str(summary),
        "--quiet",
    ]  # fmt: skip
    assert client.main(argv) == 0
    report = json.loads(summary.read_text())
    documents = Document.objects.filter(source_system="adventureworks")
    assert documents.count() == report["orders"] == ORDERS
    lines = Line.objects.filter(document__in=documents)
    detail = [r for r in closeout.demo_data.table_rows("PurchaseOrderDetail")]
    ids = {h["PurchaseOrderID"] for h in closeout.demo_data.table_rows("PurchaseOrderHeader")}
    first = sorted(ids, key=int)[:ORDERS]
    rows = [r for r in detail if r["PurchaseOrderID"] in first]
    assert lines.count() == len(rows)
    stocked = sum(float(r["StockedQty"]) for r in rows)
    assert float(sum(line.fulfilled_qty for line in lines)) == pytest.approx(stocked)
    expected_events = sum(float(r["ReceivedQty"]) > 0 for r in rows) + sum(
        float(r["RejectedQty"]) > 0 for r in rows
    )
    assert BusinessEvent.objects.count() == expected_events == report["events"]["applied"]
    assert Partner.objects.count() == len({d.partner_id for d in documents})
    policy = ClosePolicy.objects.get(doc_type="purchase_order", org_unit=None)
    assert policy.rule_settings["paid"] == {"enabled": False}
    sweep = report["sweep"]
    assert sweep["examined"] == ORDERS
    assert "purchase_order.paid" not in sweep["rule_failures"]
    assert (
        sweep["would_close"]
        + sweep["exception_queue"]
        + sweep["blocked"]
        + sweep["warning_only"]
        + sweep["not_due"]
        == ORDERS
    )
    assert not documents.filter(close_state="closed").exists()

    # Rerun with the checkpoint: nothing is sent again. Without it, the same batches carry the
    # same Idempotency-Keys and get the first answers replayed; other batches (another size)
    # are new requests whose events are all duplicates. Nothing is posted twice.
    assert client.main(argv) == 0
    assert json.loads(summary.read_text())["events"] == {}
    checkpoint.unlink()
    assert client.main(argv) == 0
    assert json.loads(summary.read_text())["events"] == report["events"]
    checkpoint.unlink()
    assert client.main([*argv, "--batch-size", "30"]) == 0
    assert json.loads(summary.read_text())["events"] == {"duplicate": expected_events}
    assert BusinessEvent.objects.count() == expected_events
    assert audit_chain_verify().intact
