"""Batch undo (批量撤销, issue 16 §2): an undo job reopens exactly what a batch closed, through the
reopen route, skipping with a reason every document that changed after the batch."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone, translation

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.approvals.models import AccountingPeriod, CloseRequest, RequestAction, RequestState
from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.models import BatchAction, BatchJob, BatchState, ItemState
from closeout.batches.selectors import batch_results
from closeout.batches.services import (
    batch_create,
    batch_preview,
    batch_resume,
    batch_start,
    batch_work,
)
from closeout.batches.undo import batch_undo_create, item_messages
from closeout.closing.selectors import open_commitments_by_item
from closeout.closing.services import document_close, document_hold, document_reopen
from closeout.closing.states import Action
from closeout.closing.transitions import documents_state_set
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import CloseState, Document, EventKind
from closeout.reports.verification import batch_verify
from tests.approvals.conftest import make_route
from tests.factories import (
    PO,
    Org,
    an_item,
    complete,
    make_document,
    org_tree,
    post,
    user_with_role,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_tasks(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""


@pytest.fixture
def org() -> Org:
    return org_tree()


@pytest.fixture
def boss(org: Org) -> User:
    """Runs batches and may reopen (supervisor includes operator)."""
    return user_with_role("undo-boss", "supervisor", org.company)


@pytest.fixture
def run_inline(django_capture_on_commit_callbacks: Any) -> Iterator[Callable[..., Any]]:
    def run(fn: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    yield run


def short_po(org: Org) -> Document:
    """6 of 10 received, invoiced and paid: closing it (with a remark) releases 4 × 5."""
    document = make_document(PO, org.dept_a, ((10, 5),), item=an_item("UNDO-ITEM"))
    post(document, EventKind.RECEIPT, 1, 6)
    post(document, EventKind.INVOICE, 1, 6, 30)
    post(document, EventKind.PAYMENT, 1, 0, 30)
    document.refresh_from_db()
    return document


def close_batch(actor: User, documents: list[Document], run_inline: Callable[..., Any]) -> BatchJob:
    job = batch_create(
        actor=actor,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in documents],
        reason_code="completed",
        remark="short shipped for good",
    )
    run_inline(lambda: batch_start(actor=actor, job=job))
    job.refresh_from_db()
    assert job.state == BatchState.DONE
    return job


def undo(actor: User, job: BatchJob, run_inline: Callable[..., Any]) -> BatchJob:
    undo_job = batch_undo_create(actor=actor, job_id=job.pk)
    batch_preview(actor=actor, job=undo_job)
    run_inline(lambda: batch_start(actor=actor, job=undo_job))
    undo_job.refresh_from_db()
    return undo_job


def _item(job: BatchJob, document: Document) -> Any:
    return batch_results(job).get(document=document)


def test_undo_restores_states_and_released_quantities(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    docs = [short_po(org) for _ in range(3)]
    item_id = docs[0].lines.get().item_id
    before = open_commitments_by_item([item_id])[item_id].on_order
    assert before == Decimal(12)
    job = close_batch(boss, docs, run_inline)
    assert open_commitments_by_item([item_id]) == {}
    line = docs[0].lines.get()
    assert (line.released_qty, line.released_value) == (Decimal(4), Decimal(20))

    undo_job = undo(boss, job, run_inline)
    assert undo_job.action == BatchAction.UNDO and undo_job.undoes_id == job.pk
    assert undo_job.predicted == {"would_reopen": 3}
    assert undo_job.predicted_released_value == Decimal(60)
    assert (undo_job.state, undo_job.succeeded, undo_job.skipped) == (BatchState.DONE, 3, 0)
    for document in docs:
        document.refresh_from_db()
        assert document.close_state == CloseState.OPEN
        assert document.released_value == 0
        line = document.lines.get()
        assert (line.close_state, line.released_qty, line.released_value) == ("open", 0, 0)
    assert open_commitments_by_item([item_id])[item_id].on_order == before
    reopened = AuditEvent.objects.filter(
        action=AuditAction.DOCUMENT_REOPENED, request_id=f"batch:{undo_job.pk}"
    )
    assert reopened.count() == 3
    restored = reopened.first().data["lines"]  # type: ignore[union-attr]
    assert restored == [{"line": 1, "restored_qty": "4.0000", "restored_value": "20.0000"}]
    created = AuditEvent.objects.get(action=AuditAction.BATCH_UNDO_CREATED)
    assert created.data["undoes"] == job.pk and created.object_id == str(undo_job.pk)
    verification = batch_verify(job_id=undo_job.pk, actor=None)
    assert verification.passed, verification.problems
    assert audit_chain_verify().intact


def test_each_change_after_the_batch_is_skipped_with_its_reason(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    untouched, reopened, reclosed, held, archived, evented = (
        complete(make_document(PO, org.dept_a)) for _ in range(6)
    )
    docs = [untouched, reopened, reclosed, held, archived, evented]
    job = close_batch(boss, docs, run_inline)
    for document in (reopened, reclosed, held):
        document_reopen(actor=boss, document=document, reason_code="wrong_close", remark="x")
    document_close(actor=boss, document=reclosed, reason_code="completed")
    document_hold(actor=boss, document=held, reason="dispute")
    documents_state_set([archived.pk], Action.ARCHIVE, now=timezone.now())  # as the archive run
    post(evented, EventKind.RETURN, 1, 1)  # quarantined: the document is closed

    undo_job = undo(boss, job, run_inline)
    reasons = {d.pk: _item(undo_job, d).params.get("reason") for d in docs}
    assert reasons == {
        untouched.pk: None,
        reopened.pk: "reopened",
        reclosed.pk: "reclosed",
        held.pk: "on_hold",
        archived.pk: "archived",
        evented.pk: "new_events",
    }
    assert (undo_job.succeeded, undo_job.skipped, undo_job.failed) == (1, 5, 0)
    with translation.override("zh-hans"):
        zh = item_messages(_item(undo_job, reclosed))[0]
    assert "批次后" in zh and reclosed.number in zh
    en = _item(undo_job, reclosed).message
    assert en == f"{reclosed.number} was reopened and closed again after the batch"
    reclosed.refresh_from_db()
    assert reclosed.close_state == CloseState.CLOSED  # untouched by the undo


def test_reopen_route_submits_requests_and_closed_period_refuses(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    routed, in_period = (complete(make_document(PO, org.dept_a)) for _ in range(2))
    job = close_batch(boss, [routed, in_period], run_inline)
    make_route("undo reopen", action="reopen", steps=(("finance", "财务"),), doc_type=PO)
    in_period.refresh_from_db()
    day = in_period.close_date
    assert day is not None
    # Only in_period's close date lies in the closed period: move routed's close a day later.
    Document.objects.filter(pk=routed.pk).update(close_date=day + timedelta(days=1))
    AccountingPeriod.objects.create(name="closed", start=day, end=day, closed=True)

    undo_job = undo(boss, job, run_inline)
    assert undo_job.predicted == {"needs_approval": 1, "refused": 1}
    requested = _item(undo_job, routed)
    assert (requested.state, requested.outcome) == (ItemState.DONE, "requested")
    request = CloseRequest.objects.get(pk=requested.request_id)
    assert (request.action, request.state) == (RequestAction.REOPEN, RequestState.PENDING)
    assert request.requester_id == boss.pk
    routed.refresh_from_db()
    assert routed.close_state == CloseState.REOPEN_PENDING
    refused = _item(undo_job, in_period)
    assert refused.state == ItemState.FAILED and refused.params["reason"] == "closed_period"
    assert "closed accounting period" in refused.message
    in_period.refresh_from_db()
    assert in_period.close_state == CloseState.CLOSED
    assert batch_verify(job_id=undo_job.pk, actor=None).passed


def test_twice_undo_of_undo_running_and_resume_are_refused(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    job = close_batch(boss, [complete(make_document(PO, org.dept_a))], run_inline)
    undo_job = undo(boss, job, run_inline)
    with pytest.raises(InvalidInput, match=f"already undone by #{undo_job.pk}"):
        batch_undo_create(actor=boss, job_id=job.pk)
    with pytest.raises(InvalidInput, match="cannot be undone"):
        batch_undo_create(actor=boss, job_id=undo_job.pk)
    BatchJob.objects.filter(pk=job.pk).update(state=BatchState.FAILED)  # as if it had failed
    with pytest.raises(InvalidInput, match="cannot be resumed"):
        batch_resume(actor=boss, job=job)
    running = batch_create(
        actor=boss,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[complete(make_document(PO, org.dept_a)).number],
        reason_code="completed",
    )
    BatchJob.objects.filter(pk=running.pk).update(state=BatchState.RUNNING)
    with pytest.raises(InvalidInput, match="only a batch that has run"):
        batch_undo_create(actor=boss, job_id=running.pk)


def test_a_cancelled_draft_undo_does_not_count(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    job = close_batch(boss, [complete(make_document(PO, org.dept_a))], run_inline)
    draft = batch_undo_create(actor=boss, job_id=job.pk)
    BatchJob.objects.filter(pk=draft.pk).update(state=BatchState.CANCELLED)
    assert batch_undo_create(actor=boss, job_id=job.pk).undoes_id == job.pk


def test_permissions_and_scope(org: Org, boss: User, run_inline: Callable[..., Any]) -> None:
    # Closes company-wide (operator), reopens in department A only (supervisor there).
    owner = user_with_role("undo-owner", "operator", org.company)
    grant_create(
        actor=None,
        user=owner,
        role=Role.objects.get(code="supervisor"),
        org_unit=org.dept_a,
        reason="test",
    )
    ours = complete(make_document(PO, org.dept_a))
    theirs = complete(make_document(PO, org.dept_b))
    job = close_batch(owner, [ours, theirs], run_inline)
    with pytest.raises(PermissionDenied):
        batch_undo_create(actor=boss, job_id=job.pk)  # another user's batch
    plain = user_with_role("undo-plain", "operator", org.company)
    plain_job = close_batch(plain, [complete(make_document(PO, org.dept_a))], run_inline)
    with pytest.raises(InvalidInput, match=r"within your 'reopen\.approve' permission"):
        batch_undo_create(actor=plain, job_id=plain_job.pk)
    undo_job = undo(owner, job, run_inline)
    outside = batch_results(undo_job).get(document__isnull=True)
    assert outside.label == "—" and theirs.number not in outside.message
    assert outside.state == ItemState.SKIPPED
    assert (undo_job.total, undo_job.succeeded, undo_job.skipped) == (2, 1, 1)
    theirs.refresh_from_db()
    assert theirs.close_state == CloseState.CLOSED


def test_a_document_reopened_meanwhile_is_not_reopened_twice(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    first, second = (complete(make_document(PO, org.dept_a)) for _ in range(2))
    job = close_batch(boss, [first, second], run_inline)
    undo_job = batch_undo_create(actor=boss, job_id=job.pk)
    batch_preview(actor=boss, job=undo_job)
    assert undo_job.refresh_from_db() is None and undo_job.state == BatchState.PREVIEWED
    # Someone reopens `second` after the preview, before the run reaches it.
    document_reopen(actor=boss, document=second, reason_code="wrong_close", remark="by hand")
    BatchJob.objects.filter(pk=undo_job.pk).update(state=BatchState.RUNNING)
    assert batch_work(undo_job.pk) == 2
    item = _item(undo_job, second)
    assert (item.state, item.params["reason"]) == (ItemState.SKIPPED, "reopened")
    reopens = AuditEvent.objects.filter(
        action=AuditAction.DOCUMENT_REOPENED, object_id=str(second.pk)
    )
    assert reopens.count() == 1


def test_cli_undo(org: Org, boss: User, run_inline: Callable[..., Any]) -> None:
    job = close_batch(boss, [complete(make_document(PO, org.dept_a))], run_inline)
    out = StringIO()
    call_command("batch", "undo", str(job.pk), "--as", boss.username, "--run", stdout=out)
    text = out.getvalue()
    undo_job = BatchJob.objects.get(undoes=job)
    assert f"created undo batch #{undo_job.pk} of batch #{job.pk}" in text
    assert f"batch #{undo_job.pk} undo" in text and "1 done" in text
    out = StringIO()
    call_command("batch", "status", str(job.pk), stdout=out)
    assert f"undone by #{undo_job.pk}" in out.getvalue()
