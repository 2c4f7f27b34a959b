"""The ERP synchronisation services (issue 11, item 7): partner and document sync live in
documents.services, close policies in closing.policies, webhook endpoints in
notifications.services; each checks permission and writes its audit event, and the API keeps
only calls. A partner pushed by the ERP is audited on creation and on change."""

import ast
from pathlib import Path

import pytest

from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.core.models import Partner
from closeout.documents.services import partner_sync
from tests.factories import Org, actions_since, audit_head, user_with_role

pytestmark = pytest.mark.django_db

SRC = Path(__file__).resolve().parents[2] / "src" / "closeout"


def test_partner_sync_audits_creation_and_changes_only(org: Org) -> None:
    erp = user_with_role("erp", "integration", org.company)
    head = audit_head()
    partner, created = partner_sync(actor=erp, code="V-1", name="Vendor 1", kind="supplier")
    assert created
    assert actions_since(head) == [AuditAction.PARTNER_CREATED]
    event = AuditEvent.objects.get(seq=head + 1)
    assert (event.object_type, event.object_id, event.actor_id) == (
        "partner",
        str(partner.pk),
        erp.pk,
    )
    assert event.data == {"name": "Vendor 1", "kind": "supplier", "active": True}
    # An identical resend changes nothing and records nothing.
    head = audit_head()
    assert partner_sync(actor=erp, code="V-1", name="Vendor 1", kind="supplier") == (partner, False)
    assert audit_head() == head
    partner_sync(actor=erp, code="V-1", name="Vendor One", kind="supplier", active=False)
    assert actions_since(head) == [AuditAction.PARTNER_UPDATED]
    assert AuditEvent.objects.get(seq=head + 1).data == {
        "name": {"before": "Vendor 1", "after": "Vendor One"},
        "active": {"before": True, "after": False},
    }
    assert Partner.objects.get(code="V-1").name == "Vendor One"


def test_partner_sync_checks_permission_and_input(org: Org) -> None:
    operator = user_with_role("op", "operator", org.company)
    erp = user_with_role("erp", "integration", org.company)
    head = audit_head()
    with pytest.raises(PermissionDenied):
        partner_sync(actor=operator, code="V-2", name="x", kind="supplier")
    with pytest.raises(InvalidInput, match="unknown partner kind"):
        partner_sync(actor=erp, code="V-2", name="x", kind="vendor")
    assert not Partner.objects.filter(code="V-2").exists() and audit_head() == head


def _closeout_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("closeout.")
    }


def test_api_services_hold_no_domain_writes() -> None:
    """What the API writes itself is its own records (tokens, idempotency); every domain write
    is a call into the domain app's services."""
    imports = _closeout_imports(SRC / "api" / "services.py")
    allowed = {
        "closeout.access.permissions",
        "closeout.access.services",
        "closeout.api.models",
        "closeout.audit.models",
        "closeout.audit.services",
        "closeout.core.errors",
        "closeout.core.inputs",  # bounds of the token's validity, no domain
    }
    assert imports <= allowed, imports - allowed
    names = {
        node.name
        for node in ast.parse((SRC / "api" / "services.py").read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    moved = {
        "partner_sync",
        "document_sync",
        "policy_update",
        "webhook_endpoint_create",
        "webhook_endpoint_deactivate",
    }
    assert not names & moved
