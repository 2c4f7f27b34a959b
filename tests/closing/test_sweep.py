"""The automatic close sweep (S2): closes exactly the documents whose every rule passes
(grace period included), leaves exception and blocked ones with counts and a sample, changes
nothing on a dry run, never closes anything twice, and writes one auto-close audit event per
document it closes."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.selectors import documents_ready_to_close
from closeout.closing.services import document_hold
from closeout.closing.sweep import sweep_run
from closeout.documents.models import CloseKind, CloseState, Document, EventKind, Line
from tests.factories import (
    AP,
    AR,
    PO,
    PS,
    SC,
    SO,
    Org,
    actions_since,
    audit_head,
    complete,
    document_events,
    make_document,
    post,
    ready_document,
    set_policy,
)

pytestmark = pytest.mark.django_db


def states(*docs: Document) -> list[str]:
    found = dict(
        Document.objects.filter(pk__in=[d.pk for d in docs]).values_list("pk", "close_state")
    )
    return [found[d.pk] for d in docs]


@pytest.fixture
def mix(org: Org, operator: User) -> dict[str, Document]:
    """Purchase orders in every situation the sweep must tell apart (default PO policy:
    7 grace days, 2% under-delivery tolerance)."""
    short = make_document(PO, org.dept_a, [(100, 1)])
    post(short, EventKind.RECEIPT, 1, 90)
    post(short, EventKind.INVOICE, 1, 90, 90)
    post(short, EventKind.PAYMENT, 1, 0, 90)
    pending = ready_document(PO, org.dept_a)
    post(pending, EventKind.INVOICE, 1, 0, 0, pending=True)
    held = ready_document(PO, org.dept_a, [(1, 1), (1, 1)])
    document_hold(actor=operator, document=held, reason="dispute", line_nos=[2])
    return {
        "ready": ready_document(PO, org.dept_a, [(10, 5), (3, 2)]),
        "ready_within_tolerance": _within_tolerance(org),
        "recent": complete(make_document(PO, org.dept_a), days_ago=1),
        "short": short,
        "pending": pending,
        "held_line": held,
    }


def _within_tolerance(org: Org) -> Document:
    doc = make_document(PO, org.dept_b, [(100, 1)])
    post(doc, EventKind.RECEIPT, 1, 98)  # exactly the 2% under-delivery tolerance
    post(doc, EventKind.INVOICE, 1, 98, 98)
    post(doc, EventKind.PAYMENT, 1, 0, 98)
    return doc


def test_sweep_closes_exactly_the_ready_documents(mix: dict[str, Document]) -> None:
    expected = {mix["ready"].pk, mix["ready_within_tolerance"].pk}
    assert set(documents_ready_to_close(PO, for_auto=True).values_list("pk", flat=True)) == expected
    before = audit_head()
    run = sweep_run(doc_type=PO)
    closed = set(
        Document.objects.filter(close_state=CloseState.CLOSED).values_list("pk", flat=True)
    )
    assert closed == expected
    assert (run.examined, run.closed, run.lines_closed) == (6, 2, 3)
    assert (run.exception_queue, run.blocked, run.not_due, run.policy_off) == (1, 2, 1, 0)
    assert run.exception_sample == [f"purchase_order {mix['short'].number}"]
    assert run.rule_failures["purchase_order.received"] == 1
    assert run.rule_failures["purchase_order.events_settled"] == 1
    assert run.rule_failures["purchase_order.no_line_on_hold"] == 1
    assert not run.dry_run
    # One auto-close event per closed document, then the run's own event.
    closes = AuditEvent.objects.filter(seq__gt=before, action=AuditAction.DOCUMENT_CLOSED)
    assert sorted(int(e.object_id) for e in closes) == sorted(expected)
    assert {e.data["kind"] for e in closes} == {CloseKind.AUTO}
    assert {e.reason for e in closes} == {"auto_rules_met"}
    assert actions_since(before)[-1] == AuditAction.SWEEP_RUN
    assert len(actions_since(before)) == 3
    for pk in expected:
        doc = Document.objects.get(pk=pk)
        assert (doc.close_kind, doc.close_reason, doc.closed_by) == ("auto", "auto_rules_met", None)
        assert set(Line.objects.filter(document=doc).values_list("close_state", flat=True)) == {
            "closed"
        }
    line = Line.objects.get(document=mix["ready_within_tolerance"])
    assert (line.released_qty, line.released_value) == (2, 2)


def test_dry_run_changes_nothing(mix: dict[str, Document]) -> None:
    before = audit_head()
    docs = list(mix.values())
    was = states(*docs)
    run = sweep_run(doc_type=PO, dry_run=True)
    assert run.dry_run and (run.closed, run.exception_queue, run.blocked) == (2, 1, 2)
    assert states(*docs) == was
    assert audit_head() == before
    assert not Line.objects.filter(close_state=CloseState.CLOSED).exists()


def test_running_twice_closes_nothing_twice(mix: dict[str, Document]) -> None:
    first = sweep_run(doc_type=PO)
    before = audit_head()
    second = sweep_run(doc_type=PO)
    assert (first.closed, second.closed, second.examined) == (2, 0, 4)
    assert actions_since(before) == [AuditAction.SWEEP_RUN]
    for doc in mix.values():
        assert len(document_events(doc, AuditAction.DOCUMENT_CLOSED)) == (
            1 if doc.pk in (mix["ready"].pk, mix["ready_within_tolerance"].pk) else 0
        )


def test_auto_close_off_counts_as_policy_off(mix: dict[str, Document], org: Org) -> None:
    set_policy(PO, auto_close_enabled=False)
    run = sweep_run(doc_type=PO)
    assert (run.closed, run.examined, run.policy_off) == (0, 0, 6)
    assert not Document.objects.filter(close_state=CloseState.CLOSED).exists()
    # Switched off for one department only: the rest of the company still closes.
    set_policy(PO, auto_close_enabled=True)
    set_policy(PO, org.dept_b, auto_close_enabled=False, under_qty_pct=Decimal(2))
    run = sweep_run(doc_type=PO)
    assert (run.closed, run.policy_off) == (1, 1)
    assert states(mix["ready"], mix["ready_within_tolerance"]) == ["closed", "open"]


def test_organisation_policy_partitions_the_sweep(org: Org) -> None:
    set_policy(PO, org.dept_a, under_qty_pct=Decimal(20))
    docs = {}
    for unit in (org.dept_a, org.team_a1, org.dept_b):
        doc = make_document(PO, unit, [(100, 1)])
        post(doc, EventKind.RECEIPT, 1, 85)
        post(doc, EventKind.INVOICE, 1, 85, 85)
        post(doc, EventKind.PAYMENT, 1, 0, 85)
        docs[unit.code] = doc
    run = sweep_run(doc_type=PO)
    assert (run.closed, run.exception_queue) == (2, 1)
    assert states(docs["D-A"], docs["T-A1"], docs["D-B"]) == ["closed", "closed", "open"]


def test_sweep_all_types(org: Org) -> None:
    docs = [ready_document(t, org.dept_a, [(2, 3), (1, 5)]) for t in (PO, SO, SC, AR, AP, PS)]
    run = sweep_run()
    assert (run.closed, run.examined, run.lines_closed) == (6, 6, 12)
    assert set(states(*docs)) == {"closed"}
    for doc in docs:
        events = document_events(doc, AuditAction.DOCUMENT_CLOSED)
        assert len(events) == 1 and events[0].data["kind"] == "auto"


def test_small_chunks_give_the_same_result(org: Org) -> None:
    ready = [ready_document(PO, org.dept_a) for _ in range(5)]
    short = make_document(PO, org.dept_a, [(10, 1)])
    post(short, EventKind.RECEIPT, 1, 1)
    run = sweep_run(doc_type=PO, chunk_size=2)
    assert (run.closed, run.examined) == (5, 6)
    assert set(states(*ready)) == {"closed"} and states(short) == ["open"]
