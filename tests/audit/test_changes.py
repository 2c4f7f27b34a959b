"""The one before/after helper of configuration changes: the shape the history page shows."""

from datetime import date
from decimal import Decimal

import pytest

from closeout.approvals.models import AccountingPeriod
from closeout.audit.changes import field_changes, field_values
from closeout.audit.models import AuditAction, AuditEvent
from closeout.notifications.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_deactivate,
)
from tests.factories import org_tree, user_with_role


def test_field_values_are_audit_values() -> None:
    period = AccountingPeriod(name="2026-01", start=date(2026, 1, 1), end=date(2026, 1, 31))
    assert field_values(period, ["name", "start", "closed"]) == {
        "name": "2026-01",
        "start": "2026-01-01",
        "closed": False,
    }


def test_field_changes_names_changed_fields_or_every_field_of_a_new_row() -> None:
    after = {"days": 3, "active": True, "amount": str(Decimal("1.50"))}
    assert field_changes({"days": 1, "active": True, "amount": "1.50"}, after) == {
        "days": {"before": 1, "after": 3}
    }
    assert field_changes(None, {"days": 3}) == {"days": {"before": None, "after": 3}}
    assert field_changes({"days": 3}, {"days": 3}, unchanged=True) == {
        "days": {"before": 3, "after": 3}
    }
    assert field_changes({"days": 3}, {"days": 3}) == {}


@pytest.mark.django_db
def test_webhook_endpoint_writes_record_before_and_after() -> None:
    admin = user_with_role("hook-admin", "admin", org_tree().company)
    endpoint = webhook_endpoint_create(
        actor=admin, name="erp", url="https://hooks.example.invalid/erp", events=["a"]
    )
    webhook_endpoint_deactivate(actor=admin, endpoint_id=endpoint.pk)
    created, switched_off = AuditEvent.objects.filter(action=AuditAction.WEBHOOK_CHANGED).order_by(
        "pk"
    )
    assert created.data == {
        "url": {"before": None, "after": "https://hooks.example.invalid/erp"},
        "events": {"before": None, "after": ["a"]},
        "active": {"before": None, "after": True},
    }
    assert switched_off.data == {"active": {"before": True, "after": False}}
