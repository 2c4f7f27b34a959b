"""The audit hash chain: intact after many operations; an edited, deleted, reordered or
forged row is detected and the first broken sequence number named; the table itself refuses
UPDATE and DELETE (on PostgreSQL and SQLite). tests/audit/test_forgery.py has the forgeries that
need the key or the checkpoints to be caught."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction

from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.services import (
    AuditEntry,
    audit_append,
    audit_chain_verify,
    event_hash,
    sqlite_audit_guards_lifted,
)
from closeout.closing.services import (
    document_close,
    document_hold,
    document_release,
    document_reopen,
)
from closeout.closing.sweep import sweep_run
from closeout.documents.models import EventKind
from tests.factories import (
    PO,
    SO,
    Org,
    audit_head,
    lenient,
    post,
    ready_document,
    user_with_role,
)
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@contextmanager
def tampering() -> Iterator[None]:
    """The audit triggers would refuse the tampering: switch them off for the duration, as an
    attacker with owner rights could (PostgreSQL: ALTER TABLE … DISABLE TRIGGER; SQLite, where
    anyone who can write the file can: DROP TRIGGER, created again afterwards)."""
    if connection.vendor != "postgresql":
        with sqlite_audit_guards_lifted():
            yield
        return
    tables = ("audit_auditevent", "audit_auditchainhead")
    # ALTER TABLE needs the deferred foreign-key checks of this transaction done first.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def history(org: Org, operator: User, supervisor: User) -> int:
    """Many kinds of operation, leaving a chain of a few dozen events; returns its length."""
    lenient(PO)
    docs = [ready_document(PO, org.dept_a, [(2, 3), (1, 4)]) for _ in range(3)]
    document_close(actor=operator, document=docs[0], reason_code="completed", line_nos=[1])
    document_close(actor=operator, document=docs[0], reason_code="completed")
    post(docs[0], EventKind.RECEIPT, 1, 1)  # quarantined
    document_reopen(actor=supervisor, document=docs[0], reason_code="late_delivery")
    document_hold(actor=operator, document=docs[1], reason="dispute")
    document_release(actor=operator, document=docs[1], reason="settled")
    ready_document(SO, org.dept_b)
    sweep_run(doc_type=PO)
    verdict = audit_chain_verify()
    assert verdict.intact, verdict.problem
    assert verdict.checked == audit_head() > 30
    return verdict.checked


def middle(history: int) -> int:
    return history // 2


def test_chain_is_intact_after_many_operations(history: int) -> None:
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.checked, verdict.first_bad_seq) == (True, history, None)
    last = AuditEvent.objects.get(seq=history)
    assert verdict.head_hash == last.hash == event_hash(last)


def test_edited_row_is_detected(history: int) -> None:
    seq = middle(history)
    with tampering():
        AuditEvent.objects.filter(seq=seq).update(reason="nothing to see")
    verdict = audit_chain_verify()
    assert not verdict.intact
    assert verdict.first_bad_seq == seq
    assert f"#{seq}" in verdict.problem and "modified" in verdict.problem


def test_edit_with_recomputed_hash_breaks_the_next_link(history: int) -> None:
    seq = middle(history)
    event = AuditEvent.objects.get(seq=seq)
    event.data = {"forged": True}
    event.hash = event_hash(event)
    with tampering():
        AuditEvent.objects.filter(seq=seq).update(data=event.data, hash=event.hash)
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.first_bad_seq) == (False, seq + 1)
    assert "does not link" in verdict.problem


def test_deleted_row_is_detected(history: int) -> None:
    seq = middle(history)
    with tampering():
        AuditEvent.objects.filter(seq=seq).delete()
    verdict = audit_chain_verify()
    assert not verdict.intact
    assert verdict.first_bad_seq == seq + 1
    assert f"where #{seq} was expected" in verdict.problem


def test_deleted_newest_row_is_detected(history: int) -> None:
    with tampering():
        AuditEvent.objects.filter(seq=history).delete()
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.first_bad_seq) == (False, history)
    assert "deleted" in verdict.problem


def test_reordered_pair_is_detected(history: int) -> None:
    seq = middle(history)
    with tampering():
        AuditEvent.objects.filter(seq=seq).update(seq=-1)
        AuditEvent.objects.filter(seq=seq + 1).update(seq=seq)
        AuditEvent.objects.filter(seq=-1).update(seq=seq + 1)
    verdict = audit_chain_verify()
    assert not verdict.intact
    assert verdict.first_bad_seq == seq + 1
    assert f"#{seq} was expected" in verdict.problem


def test_forged_row_with_valid_hash_is_detected(history: int) -> None:
    last = AuditEvent.objects.get(seq=history)
    forged = AuditEvent(
        seq=history + 1,
        at=last.at,
        actor_id=None,
        actor_name="system",
        action=int(AuditAction.DOCUMENT_REOPENED),
        object_type="document",
        object_id=last.object_id,
        data={},
        prev_hash=last.hash,
    )
    forged.hash = event_hash(forged)
    forged.save()  # an INSERT: the trigger only refuses UPDATE and DELETE
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.first_bad_seq) == (False, history + 1)
    assert f"#{history + 1}" in verdict.problem


def test_forged_row_with_a_broken_link_is_detected(history: int) -> None:
    forged = AuditEvent(
        seq=history + 1,
        at=AuditEvent.objects.get(seq=history).at,
        actor_name="system",
        action=int(AuditAction.DOCUMENT_CLOSED),
        object_type="document",
        object_id="1",
        prev_hash="f" * 64,
    )
    forged.hash = event_hash(forged)
    with tampering():  # the insert trigger refuses a row that does not continue the chain
        forged.save()
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.first_bad_seq) == (False, history + 1)


def test_rolled_back_change_leaves_no_audit_event(history: int) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit_append(
            actor=None,
            entries=[AuditEntry(AuditAction.POLICY_CHANGED, AuditObject.CLOSE_POLICY, 1)],
        )
        1 / 0  # noqa: B018
    assert audit_head() == history and audit_chain_verify().intact


def test_the_database_refuses_update_and_delete(history: int) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(reason="changed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=history).delete()
    assert audit_chain_verify().intact


def test_a_broken_chain_reads_in_the_page_language(history: int, org: Org) -> None:
    """The auditor who finds a forged row reads what is wrong in Chinese on the Chinese page,
    and the API and the command line keep the English text."""
    auditor = user_with_role("aud", "auditor", org.company)
    seq = middle(history)
    with tampering():
        AuditEvent.objects.filter(seq=seq).update(reason="nothing to see")
    page = signed_in(auditor, "zh-hans").get("/audit/", {"verify": "1"}).content.decode()
    assert f"事件 #{seq} 写入后被修改过（哈希不符）" in page
    assert "modified after it was written" not in page
    english = signed_in(auditor, "en").get("/audit/", {"verify": "1"}).content.decode()
    assert f"event #{seq} was modified after it was written (hash mismatch)" in english
    verdict = audit_chain_verify()
    assert verdict.problem == f"event #{seq} was modified after it was written (hash mismatch)"


def test_a_verification_from_an_anchor_walks_only_the_tail(history: int) -> None:
    """What a batch's post-close verification does: from its first event on, linked to the
    event before it, at a cost that does not grow with the chain."""
    since = middle(history)
    verdict = audit_chain_verify(since_seq=since)
    assert (verdict.intact, verdict.checked) == (True, history - since + 2)
    with tampering():
        AuditEvent.objects.filter(seq=since + 1).update(reason="nothing to see")
    verdict = audit_chain_verify(since_seq=since)
    assert (verdict.intact, verdict.first_bad_seq) == (False, since + 1)


def test_a_verification_from_an_anchor_checks_the_anchor(history: int) -> None:
    since = middle(history)
    with tampering():
        AuditEvent.objects.filter(seq=since - 1).update(reason="nothing to see")
    verdict = audit_chain_verify(since_seq=since)
    assert (verdict.intact, verdict.first_bad_seq) == (False, since - 1)
    assert "modified" in verdict.problem
    with tampering():
        AuditEvent.objects.filter(seq=since - 1).delete()
    verdict = audit_chain_verify(since_seq=since)
    assert (verdict.intact, verdict.first_bad_seq) == (False, since - 1)
    assert "is missing" in verdict.problem
