"""The archive job on PostgreSQL with real connections: two runs at once never archive a document
twice, and a document another transaction holds locked (a reopen in progress) is skipped
(FOR UPDATE SKIP LOCKED) and archived by the next run."""

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.documents.models import CloseState, Document
from closeout.reports.archive import archive_run
from tests.closing.test_concurrency import postgres_race, race
from tests.factories import Org
from tests.reports.test_archive import closed_doc


@pytest.mark.postgres_only
@postgres_race
def test_two_archive_runs_in_parallel_never_archive_twice(org: Org, supervisor: User) -> None:
    docs = [closed_doc(supervisor, org.dept_a, 400) for _ in range(12)]
    first, second = race(lambda: archive_run(chunk_size=2), lambda: archive_run(chunk_size=2))
    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert first.archived + second.archived == len(docs)
    events = AuditEvent.objects.filter(action=AuditAction.DOCUMENT_ARCHIVED)
    assert sorted(int(e.object_id) for e in events) == sorted(d.pk for d in docs)
    assert Document.objects.filter(close_state=CloseState.ARCHIVED).count() == len(docs)
    assert audit_chain_verify().intact


@pytest.mark.postgres_only
@postgres_race
def test_a_locked_document_is_skipped_then_archived_later(org: Org, supervisor: User) -> None:
    docs = [closed_doc(supervisor, org.dept_a, 400) for _ in range(5)]
    locked = docs[2]
    holding, done = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                Document.objects.select_for_update().get(pk=locked.pk)
                holding.set()
                done.wait(timeout=60)
        finally:
            connection.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert holding.wait(timeout=30)
        run = archive_run(chunk_size=2)
    finally:
        done.set()
        thread.join(timeout=60)
    assert run.archived == 4
    assert Document.objects.get(pk=locked.pk).close_state == CloseState.CLOSED
    assert archive_run().archived == 1
    assert Document.objects.get(pk=locked.pk).close_state == CloseState.ARCHIVED
    assert AuditEvent.objects.filter(action=AuditAction.DOCUMENT_ARCHIVED).count() == 5
    assert audit_chain_verify().intact
