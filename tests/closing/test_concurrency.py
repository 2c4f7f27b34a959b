"""Races: two connections closing the same document, a close racing a receipt, two sweeps at
once (PostgreSQL, real connections in threads); and a stale in-memory document, which the
services never trust because they re-read the row under a lock."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.closing.services import document_close, document_reopen
from closeout.closing.sweep import sweep_run
from closeout.core.errors import InvalidTransition
from closeout.documents.models import BusinessEvent, CloseState, Document, EventKind, Line
from closeout.documents.services import PostOutcome
from tests.factories import PO, Org, document_events, make_document, post, ready_document

# Real commits, seen by the other connection; the seeded policies and roles come back after
# each test's flush through the serialized rollback.
postgres_race = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment, each in its own thread and database connection;
    returns each call's result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.mark.postgres_only
@postgres_race
@pytest.mark.parametrize("attempt", range(3))
def test_two_connections_closing_the_same_document(org: Org, operator: User, attempt: int) -> None:
    doc = ready_document(PO, org.dept_a, [(3, 2), (4, 1)])
    close = lambda: document_close(actor=operator, document=doc, reason_code="completed")  # noqa: E731
    results = race(close, close)
    succeeded = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(succeeded) == 1 and len(refused) == 1, results
    assert isinstance(refused[0], InvalidTransition)
    assert len(document_events(doc, AuditAction.DOCUMENT_CLOSED)) == 1
    assert Document.objects.get(pk=doc.pk).close_seq == 1
    assert audit_chain_verify().intact


@pytest.mark.postgres_only
@postgres_race
@pytest.mark.parametrize("attempt", range(3))
def test_close_racing_a_receipt(org: Org, operator: User, attempt: int) -> None:
    doc = make_document(PO, org.dept_a, [(100, 1)])
    post(doc, EventKind.RECEIPT, 1, 50)
    close = lambda: document_close(  # noqa: E731
        actor=operator, document=doc, reason_code="supplier_cannot_deliver", remark="stop"
    )
    receipt = lambda: post(doc, EventKind.RECEIPT, 1, 20, external_id=f"RACE-{attempt}")  # noqa: E731
    closed, posted = race(close, receipt)
    assert not isinstance(closed, Exception), closed
    assert not isinstance(posted, Exception), posted
    event = BusinessEvent.objects.get(external_id=f"RACE-{attempt}")  # never lost
    line = Line.objects.get(document=doc)
    close_seq = document_events(doc, AuditAction.DOCUMENT_CLOSED)[0].seq
    event_audit = AuditEvent.objects.get(object_id=str(doc.pk), data__event=f"RACE-{attempt}")
    if posted.outcome == PostOutcome.APPLIED:
        # The receipt came first: the close released what was left after it.
        assert event.status == "applied" and line.fulfilled_qty == 70
        assert line.released_qty == 30 and event_audit.seq < close_seq
    else:
        # The close came first: the receipt waits in quarantine, the close released 50.
        assert posted.outcome == PostOutcome.QUARANTINED
        assert event.status == "quarantined" and event.quarantine_reason == "document is closed"
        assert line.fulfilled_qty == 50 and line.released_qty == 50
        assert event_audit.seq > close_seq
    assert Document.objects.get(pk=doc.pk).close_state == CloseState.CLOSED
    assert len(document_events(doc, AuditAction.DOCUMENT_CLOSED)) == 1
    assert audit_chain_verify().intact


@pytest.mark.postgres_only
@postgres_race
def test_two_sweeps_in_parallel_never_close_twice(org: Org) -> None:
    docs = [ready_document(PO, org.dept_a, [(1, 1)]) for _ in range(40)]
    first, second = race(
        lambda: sweep_run(doc_type=PO, chunk_size=5), lambda: sweep_run(doc_type=PO, chunk_size=5)
    )
    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert first.closed + second.closed == len(docs)
    closed_events = AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED)
    assert closed_events.count() == len(docs)
    assert sorted(int(e.object_id) for e in closed_events) == sorted(d.pk for d in docs)
    assert Document.objects.filter(close_state=CloseState.CLOSED).count() == len(docs)
    assert audit_chain_verify().intact


@pytest.mark.django_db
def test_stale_instance_cannot_close_twice(org: Org, operator: User, supervisor: User) -> None:
    doc = ready_document(PO, org.dept_a)
    stale = Document.objects.get(pk=doc.pk)  # loaded while the document is open
    document_close(actor=operator, document=doc, reason_code="completed")
    assert stale.close_state == CloseState.OPEN  # the copy in memory knows nothing
    with pytest.raises(InvalidTransition, match="is closed: cannot close"):
        document_close(actor=operator, document=stale, reason_code="completed")
    assert len(document_events(doc, AuditAction.DOCUMENT_CLOSED)) == 1
    # Reopening through a stale copy works on the fresh row too, and only once.
    document_reopen(actor=supervisor, document=stale, reason_code="wrong_close")
    with pytest.raises(InvalidTransition, match="is open: cannot reopen"):
        document_reopen(actor=supervisor, document=stale, reason_code="wrong_close")
