"""Grace days count from the later of the last business activity and the last reopen (issue 11,
item 6): a document synced years ago, closed and reopened, is not closed again by the next
sweep; the sweep, the ready queue and the automatic checklist agree, because they share one
condition (closing.rules.grace_clock)."""

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.closing.selectors import close_checklist_for, documents_ready_to_close
from closeout.closing.services import document_close, document_reopen
from closeout.closing.sweep import sweep_run
from closeout.documents.models import CloseKind, CloseState, Document
from tests.factories import PO, Org, complete, make_document, set_policy

pytestmark = pytest.mark.django_db

GRACE_DAYS = 7


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Let time pass: every `timezone.now()` (the rules' cutoff included) answers `moment`."""
    monkeypatch.setattr(timezone, "now", lambda: moment)


def _grace_check(document: Document) -> bool:
    checklist = close_checklist_for(document, for_auto=True)
    (check,) = [c for c in checklist.checks if c.rule.code == "grace_period"]
    return check.passed


def test_reopened_document_stays_open_until_grace_days_after_the_reopen(
    org: Org, operator: User, supervisor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_policy(PO, grace_days=GRACE_DAYS)
    # Every rule passes; the last business activity is three years old (synced history).
    doc = complete(make_document(PO, org.dept_a), days_ago=3 * 365)
    document_close(actor=operator, document=doc, reason_code="completed")
    reopened = document_reopen(actor=supervisor, document=doc, reason_code="audit_finding")
    doc.refresh_from_db()
    assert doc.reopened_at is not None and doc.close_state == CloseState.OPEN
    assert doc.last_activity_at is not None
    assert doc.last_activity_at < doc.reopened_at - timedelta(days=3 * 365 - 1)
    assert reopened.document.reopened_at == doc.reopened_at

    # The next sweep, right after the reopen, leaves it open: it waits for the grace days.
    run = sweep_run(doc_type=PO)
    assert (run.closed, run.not_due) == (0, 1)
    assert not documents_ready_to_close(PO, for_auto=True).filter(pk=doc.pk).exists()
    assert not _grace_check(doc)
    doc.refresh_from_db()
    assert doc.close_state == CloseState.OPEN

    # One day before the grace days end: still open.
    _at(monkeypatch, doc.reopened_at + timedelta(days=GRACE_DAYS - 1))
    assert sweep_run(doc_type=PO).closed == 0
    assert not _grace_check(doc)

    # Once they have passed since the reopen, the sweep closes it (automatically).
    _at(monkeypatch, doc.reopened_at + timedelta(days=GRACE_DAYS, hours=1))
    assert _grace_check(doc)
    assert documents_ready_to_close(PO, for_auto=True).filter(pk=doc.pk).exists()
    assert sweep_run(doc_type=PO).closed == 1
    doc.refresh_from_db()
    assert (doc.close_state, doc.close_kind) == (CloseState.CLOSED, CloseKind.AUTO)


def test_later_activity_after_a_reopen_still_counts(
    org: Org, operator: User, supervisor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock is the later of the two: activity after the reopen pushes it further."""
    set_policy(PO, grace_days=GRACE_DAYS)
    doc = complete(make_document(PO, org.dept_a), days_ago=400)
    document_close(actor=operator, document=doc, reason_code="completed")
    document_reopen(actor=supervisor, document=doc, reason_code="audit_finding")
    doc.refresh_from_db()
    later = doc.reopened_at + timedelta(days=5)
    Document.objects.filter(pk=doc.pk).update(last_activity_at=later)
    _at(monkeypatch, doc.reopened_at + timedelta(days=GRACE_DAYS, hours=1))
    assert sweep_run(doc_type=PO).closed == 0
    _at(monkeypatch, later + timedelta(days=GRACE_DAYS, hours=1))
    assert sweep_run(doc_type=PO).closed == 1


def test_never_reopened_documents_keep_their_activity_clock(org: Org) -> None:
    set_policy(PO, grace_days=GRACE_DAYS)
    old = complete(make_document(PO, org.dept_a), days_ago=GRACE_DAYS + 1)
    recent = complete(make_document(PO, org.dept_a), days_ago=GRACE_DAYS - 1)
    assert old.reopened_at is None
    ready = set(documents_ready_to_close(PO, for_auto=True).values_list("pk", flat=True))
    assert old.pk in ready and recent.pk not in ready
