"""What-if before a policy change (S19): the verdict counts, the sample with the rules that move
documents, and the value the next sweep releases agree with what the sweep does after the change
is saved; refused without policy.manage; the stored policy is not changed by asking."""

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import Sum
from hypothesis import example, given, settings
from hypothesis import strategies as st

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_update
from closeout.closing.selectors import released_value_for, verdicts_for
from closeout.closing.sweep import sweep_run
from closeout.closing.whatif import VALUE_PLACES, policy_whatif
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import CloseState, Document, EventKind
from tests.factories import (
    PO,
    Org,
    make_document,
    post,
    ready_document,
    rolled_back,
    user_with_role,
)

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


# --- the counts equal the sweep's own verdicts, document by document ---------------------------

# One line: planned quantity, received %, invoiced quantity − received, paid share of the invoice.
LINES = st.tuples(
    st.integers(1, 400),
    st.sampled_from([0, 50, 89, 90, 95, 97, 98, 99, 100, 105, 106, 120]),
    st.sampled_from([0, 0, 0, 1, -1]),
    st.sampled_from([Decimal(1), Decimal(1), Decimal("0.5"), Decimal(0)]),
)
# One document: its lines, days since its events, whether one event is still pending.
DOCS = st.lists(
    st.tuples(
        st.lists(LINES, min_size=1, max_size=3),
        st.sampled_from([1, 20, 60]),
        st.booleans(),
    ),
    min_size=1,
    max_size=5,
)
CHANGES: list[dict[str, Any]] = [
    {"under_qty_pct": Decimal(10)},
    {"under_qty_pct": Decimal(0), "over_qty_pct": Decimal(0)},
    {"over_qty_pct": Decimal(10), "match_qty_pct": Decimal(2)},
    {"amount_tolerance_abs": Decimal(0), "amount_tolerance_pct": Decimal(0)},
    {"grace_days": 30},
    {"grace_days": 0},
    {"auto_close_enabled": False, "under_qty_pct": Decimal(5)},
    {"rule_settings": {"received": {"enabled": False}}},
    {"rule_settings": {"paid": {"severity": "warning"}, "grace_period": {"enabled": False}}},
    {"rule_settings": {"events_settled": {"severity": "exception"}}},
]


def build(org: Org, docs: list[tuple[list[tuple[int, int, int, Decimal]], int, bool]]) -> None:
    for lines, days, pending in docs:
        document = make_document(PO, org.dept_a, [(planned, 3) for planned, *_ in lines])
        for no, (planned, received_pct, off, paid) in enumerate(lines, start=1):
            received = Decimal(planned * received_pct) / 100
            if received:
                post(document, EventKind.RECEIPT, no, received, days_ago=days)
            invoiced = received + off
            if invoiced > 0:
                post(document, EventKind.INVOICE, no, invoiced, invoiced * 3, days_ago=days)
                if paid:
                    post(document, EventKind.PAYMENT, no, 0, invoiced * 3 * paid, days_ago=days)
        if pending:
            post(document, EventKind.RECEIPT, 1, 1, pending=True, days_ago=days)


def sweep_view() -> tuple[Counter[str], dict[int, str], Decimal]:
    """Each open PO's verdict as the sweep classifies it, and what it would release."""
    ids = list(
        Document.objects.filter(doc_type=PO, close_state=CloseState.OPEN).values_list(
            "pk", flat=True
        )
    )
    verdicts = {pk: v.verdict for pk, v in verdicts_for(ids, doc_type=PO, for_auto=True).items()}
    ready = [pk for pk, v in verdicts.items() if v == "ready"]
    auto = ClosePolicy.objects.get(doc_type=PO, org_unit=None).auto_close_enabled
    values = released_value_for(ready, doc_type=PO) if auto else {}
    # At the precision values are stored with (SQLite adds them as floats).
    total = sum(values.values(), Decimal(0)).quantize(VALUE_PLACES)
    return Counter(verdicts.values()), verdicts, total


@settings(max_examples=25, deadline=None)
@given(docs=DOCS, change=st.sampled_from(range(len(CHANGES))))
@example(docs=[([(100, 95, 0, Decimal(1))], 60, False)], change=0)
@example(docs=[([(100, 100, 0, Decimal(1)), (7, 0, 0, Decimal(0))], 1, True)], change=8)
def test_whatif_counts_equal_the_sweeps_verdicts(
    admin: User,
    org: Org,
    docs: list[tuple[list[tuple[int, int, int, Decimal]], int, bool]],
    change: int,
) -> None:
    """Before: the what-if's counts, value and moving documents are the verdicts of
    `verdicts_for` (the sweep's classification) per document; after: the same once the
    change is saved."""
    changes = CHANGES[change]
    with rolled_back():
        build(org, docs)
        result = policy_whatif(actor=admin, doc_type=PO, changes=changes, sample_size=50)
        counts, before, value = sweep_view()
        assert result.examined == len(docs)
        assert {v: n for v, n in result.before.items() if n} == dict(counts)
        assert result.release_before == value
        policy_update(actor=admin, doc_type=PO, changes=changes)
        counts, after, value = sweep_view()
        assert {v: n for v, n in result.after.items() if n} == dict(counts)
        assert result.release_after == value
        moved = {pk for pk in before if before[pk] != after[pk]}
        assert result.changed == len(moved)
        assert {m.document_id for m in result.sample} == moved
        for m in result.sample:
            assert (m.before, m.after) == (before[m.document_id], after[m.document_id])
            assert m.rules and all(old != new for _r, old, new in m.rules)


def test_whatif_sample_is_the_first_moving_documents(
    admin: User, org: Org, mix: dict[str, list[Document]]
) -> None:
    """The sample holds the lowest ids of the documents that move, however many
    combinations of failing rules they come from."""
    more = [short_received(org, 91) for _ in range(3)]
    result = policy_whatif(
        actor=admin, doc_type=PO, changes={"under_qty_pct": Decimal(10)}, sample_size=4
    )
    moving = sorted(d.pk for d in mix["short95"] + more)
    assert result.changed == 6
    assert [m.document_id for m in result.sample] == moving[:4]
