"""What-if before a policy change (S19): the verdict counts, the sample with the rules that move
documents, and the value the next sweep releases agree with what the sweep does after the change
is saved; refused without policy.manage; the stored policy is not changed by asking."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db.models import Sum

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_update
from closeout.closing.sweep import sweep_run
from closeout.closing.whatif import policy_whatif
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import CloseState, Document, EventKind
from tests.factories import PO, Org, make_document, post, ready_document, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(org: Org) -> User:
    return user_with_role("cfg", "admin", org.company)


def short_received(org: Org, share: int, price: int = 3) -> Document:
    """A PO whose one line of 100 is received to `share` %, invoiced and paid for that."""
    document = make_document(PO, org.dept_a, [(100, price)])
    post(document, EventKind.RECEIPT, 1, share)
    post(document, EventKind.INVOICE, 1, share, share * price)
    post(document, EventKind.PAYMENT, 1, 0, share * price)
    return document


@pytest.fixture
def mix(org: Org) -> dict[str, list[Document]]:
    ClosePolicy.objects.filter(doc_type=PO, org_unit=None).update(under_qty_pct=Decimal(2))
    return {
        "ready": [ready_document(PO, org.dept_a) for _ in range(2)],
        "short95": [short_received(org, 95) for _ in range(3)],
        "short80": [short_received(org, 80)],
    }


def test_whatif_agrees_with_the_sweep_after_the_change(
    admin: User, mix: dict[str, list[Document]]
) -> None:
    changes = {"under_qty_pct": Decimal(10)}
    before = sweep_run(doc_type=PO, dry_run=True)
    result = policy_whatif(actor=admin, doc_type=PO, changes=changes)
    assert result.examined == 6
    assert result.before["ready"] == before.closed == 2
    assert result.before["exception"] == 4
    assert result.after["ready"] == 5 and result.after["exception"] == 1
    assert result.changed == 3
    moved = {m.number for m in result.sample}
    assert moved == {d.number for d in mix["short95"]}
    assert all([r.code for r, _a, _b in m.rules] == ["received"] for m in result.sample)
    assert all(m.before == "exception" and m.after == "ready" for m in result.sample)
    # Asking changed nothing.
    assert ClosePolicy.objects.get(doc_type=PO, org_unit=None).under_qty_pct == 2
    policy_update(actor=admin, doc_type=PO, changes=changes)
    run = sweep_run(doc_type=PO)
    assert run.closed == result.after["ready"]
    released = Document.objects.filter(close_state=CloseState.CLOSED).aggregate(
        v=Sum("released_value_company")
    )["v"]
    assert released == result.release_after
    assert result.release_after - result.release_before == Decimal(3 * 5 * 3)


def test_whatif_for_a_unit_without_its_own_policy(
    admin: User, org: Org, mix: dict[str, list[Document]]
) -> None:
    """A new unit policy starts from the model defaults (as policy_update makes it) and
    governs only that unit's documents."""
    result = policy_whatif(
        actor=admin, doc_type=PO, org_unit=org.dept_b.code, changes={"under_qty_pct": Decimal(50)}
    )
    assert result.examined == 0 and result.changed == 0
    result = policy_whatif(
        actor=admin, doc_type=PO, org_unit=org.dept_a.code, changes={"under_qty_pct": Decimal(50)}
    )
    assert result.examined == 6 and result.after["ready"] == 6


def test_switching_a_rule_off_and_auto_close_off(
    admin: User, mix: dict[str, list[Document]]
) -> None:
    off = {"rule_settings": {"received": {"enabled": False}}}
    result = policy_whatif(actor=admin, doc_type=PO, changes=off)
    assert result.after["ready"] == 6
    assert {r.code for m in result.sample for r, _a, _b in m.rules} == {"received"}
    looser = {"under_qty_pct": Decimal(10)}
    result = policy_whatif(actor=admin, doc_type=PO, changes=looser)
    assert result.release_after == 45
    result = policy_whatif(
        actor=admin, doc_type=PO, changes={**looser, "auto_close_enabled": False}
    )
    assert result.changed == 3 and result.release_after == 0


def test_whatif_refusals(org: Org, mix: dict[str, list[Document]]) -> None:
    operator = user_with_role("op2", "operator", org.company)
    with pytest.raises(PermissionDenied):
        policy_whatif(actor=operator, doc_type=PO, changes={"grace_days": 1})
    admin = user_with_role("cfg2", "admin", org.company)
    with pytest.raises(InvalidInput):
        policy_whatif(actor=admin, doc_type=PO, changes={"under_qty_pct": Decimal(-1)})
    with pytest.raises(InvalidInput):
        policy_whatif(actor=admin, doc_type=PO, changes={"rule_settings": {"nope": {}}})
    assert not AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED).exists()
