"""Audit endpoints (audit.view), webhook endpoints (access.manage), policies (policy.manage)."""

import csv
import io
import json

import pytest

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.models import ClosePolicy
from closeout.notifications.models import WebhookEndpoint
from tests.api.conftest import ApiFactory, error_of
from tests.audit.test_chain import tampering
from tests.factories import PO, Org, make_document

pytestmark = pytest.mark.django_db


def _body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_document_audit_verify_and_export(api_for: ApiFactory, org: Org) -> None:
    make_document(PO, org.dept_a, number="AU-1")
    auditor = api_for("auditor")
    trail = auditor.get("/api/documents/purchase_order/AU-1/audit")
    assert trail.status_code == 200
    assert [e["action"] for e in trail.json()] == ["document_created"]
    verify = auditor.get("/api/audit/verify").json()
    assert verify["intact"] is True and verify["checked"] == AuditEvent.objects.count()
    jsonl = auditor.get("/api/audit/export", format="jsonl")
    assert jsonl.status_code == 200 and jsonl.streaming
    rows = [json.loads(line) for line in _body(jsonl).decode().splitlines()]
    assert len(rows) == AuditEvent.objects.count() and rows[-1]["hash"]
    exported = auditor.get("/api/audit/export", format="csv")
    # The one export writer starts CSV with a byte-order mark, so Excel reads Chinese text.
    table = list(csv.DictReader(io.StringIO(_body(exported).decode("utf-8-sig"))))
    assert [int(r["seq"]) for r in table] == list(range(1, len(rows) + 1))
    assert auditor.get("/api/audit/export", format="xml").status_code == 422
    operator = api_for("operator")
    for path in (
        "/api/documents/purchase_order/AU-1/audit",
        "/api/audit/verify",
        "/api/audit/export",
    ):
        response = operator.get(path)
        assert response.status_code == 403
        assert error_of(response)["details"]["permission"] == "audit.view"


def test_csv_export_neutralises_formulas(api_for: ApiFactory) -> None:
    """A webhook named like a spreadsheet formula comes out of the CSV as plain text."""
    formula = '=HYPERLINK("http://x")'
    admin = api_for("admin")
    created = admin.post("/api/webhooks", {"name": formula, "url": "https://erp.example.com/h"})
    assert created.status_code == 201
    exported = api_for("auditor").get("/api/audit/export", format="csv")
    assert exported.status_code == 200
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(_body(exported).decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert "'" + formula in cells
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))]
    # JSON lines are data, not a spreadsheet: the name stays as it was given.
    jsonl = _body(api_for("auditor").get("/api/audit/export", format="jsonl")).decode()
    assert any(json.loads(line)["object_repr"] == formula for line in jsonl.splitlines())


def test_verify_reports_tampering(api_for: ApiFactory, org: Org) -> None:
    make_document(PO, org.dept_a, number="AU-2")
    with tampering():
        AuditEvent.objects.filter(seq=1).update(reason="edited")
    body = api_for("auditor").get("/api/audit/verify").json()
    assert body["intact"] is False and body["first_bad_seq"] == 1


def test_webhook_endpoints_admin_only(api_for: ApiFactory) -> None:
    admin = api_for("admin")
    created = admin.post(
        "/api/webhooks", {"name": "erp", "url": "https://erp.example.com/hook", "events": []}
    )
    assert created.status_code == 201
    body = created.json()
    assert len(body["secret"]) > 20
    assert [w["name"] for w in admin.get("/api/webhooks").json()] == ["erp"]
    assert "secret" not in admin.get("/api/webhooks").json()[0]
    duplicate = admin.post("/api/webhooks", {"name": "erp", "url": "https://x.example.com"})
    assert duplicate.status_code == 409
    bad_url = admin.post("/api/webhooks", {"name": "x", "url": "ftp://nope"})
    assert bad_url.status_code == 422 and error_of(bad_url)["details"]["field"] == "url"
    for role in ("operator", "supervisor", "auditor"):
        api = api_for(role)
        assert api.get("/api/webhooks").status_code == 403
        assert (
            api.post("/api/webhooks", {"name": "y", "url": "https://y.example.com"}).status_code
            == 403
        )
        assert api.post(f"/api/webhooks/{body['id']}/deactivate").status_code == 403
    done = admin.post(f"/api/webhooks/{body['id']}/deactivate")
    assert done.status_code == 200 and done.json()["active"] is False
    assert not WebhookEndpoint.objects.get(pk=body["id"]).active
    assert admin.post(f"/api/webhooks/{body['id']}/deactivate").status_code == 422
    assert admin.post("/api/webhooks/99999/deactivate").status_code == 404


def test_policy_patch_switches_rules_off(api_for: ApiFactory) -> None:
    admin = api_for("admin")
    off = {"enabled": False}
    response = admin.patch(
        "/api/policies/purchase_order",
        {
            "rule_settings": {"invoice_qty_match": off, "invoice_amount_match": off, "paid": off},
            "grace_days": 0,
        },
    )
    assert response.status_code == 200, response.content
    policy = ClosePolicy.objects.get(doc_type=PO, org_unit=None)
    assert policy.rule_settings["paid"] == off and policy.grace_days == 0
    assert AuditEvent.objects.filter(action=int(AuditAction.POLICY_CHANGED)).exists()
    assert admin.get("/api/policies/purchase_order").json()["rule_settings"]["paid"] == off
    bad = admin.patch("/api/policies/purchase_order", {"rule_settings": {"nope": off}})
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "rule_settings.nope"
    bad = admin.patch("/api/policies/purchase_order", {"under_qty_pct": "-1"})
    assert bad.status_code == 422
    retention = admin.patch("/api/policies/purchase_order", {"archive_after_days": 30})
    assert retention.json()["archive_after_days"] == 30
    never = admin.patch("/api/policies/purchase_order", {"archive_after_days": None})
    assert never.status_code == 200 and never.json()["archive_after_days"] is None
    assert ClosePolicy.objects.get(doc_type=PO, org_unit=None).archive_after_days is None
    refused = api_for("operator").patch("/api/policies/purchase_order", {"grace_days": 1})
    assert refused.status_code == 403
    assert error_of(refused)["details"]["permission"] == "policy.manage"
