"""Batch jobs (S18): preview changes nothing, run closes each eligible document once with a
per-document result, progress is counted, reruns and resumes are safe."""

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.access.models import Grant, Role
from closeout.approvals.models import ApprovalRoute, ApprovalStep, CloseRequest, RequestState
from closeout.approvals.submit import close_request_submit
from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.models import BatchAction, BatchState, ItemState
from closeout.batches.selectors import batch_results
from closeout.batches.services import (
    batch_cancel,
    batch_create,
    batch_preview,
    batch_resume,
    batch_start,
    batch_work,
)
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import CloseState, Document, EventKind
from tests.factories import PO, Org, complete, make_document, org_tree, post, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_tasks(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""


@pytest.fixture
def org() -> Org:
    return org_tree()


@pytest.fixture
def buyer(org: Org) -> User:
    return user_with_role("batch-buyer", "operator", org.company)


def _short(document: Document) -> Document:
    """Half received: the `received` exception rule fails."""
    post(document, EventKind.RECEIPT, 1, 5)
    return document


def _run(fn: Callable[[], Any], capture: Any) -> Any:
    with capture(execute=True):
        return fn()


@pytest.fixture
def run_inline(django_capture_on_commit_callbacks: Any) -> Iterator[Callable[..., Any]]:
    yield lambda fn: _run(fn, django_capture_on_commit_callbacks)


def test_preview_predicts_and_changes_nothing(org: Org, buyer: User) -> None:
    ready = [complete(make_document(PO, org.dept_a)) for _ in range(3)]
    short = [_short(make_document(PO, org.dept_a)) for _ in range(2)]
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in ready + short],
        reason_code="completed",
    )
    events_before = AuditEvent.objects.count()
    job = batch_preview(actor=buyer, job=job)
    assert job.state == BatchState.PREVIEWED
    # Refused for want of a remark (closing.services.remark_required): told apart.
    assert job.predicted == {"would_close": 3, "needs_remark": 2}
    refused = batch_results(job).filter(predicted="needs_remark")
    assert all("remark" in item.predicted_message for item in refused)
    assert Document.objects.filter(close_state=CloseState.CLOSED).count() == 0
    assert AuditEvent.objects.count() == events_before


def test_run_closes_each_eligible_document_once(
    org: Org, buyer: User, run_inline: Callable[..., Any]
) -> None:
    ready = [complete(make_document(PO, org.dept_a)) for _ in range(5)]
    short = _short(make_document(PO, org.dept_a))
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in [*ready, short]],
        reason_code="completed",
    )
    job = run_inline(lambda: batch_start(actor=buyer, job=job))
    job.refresh_from_db()
    assert job.state == BatchState.DONE
    assert (job.total, job.processed, job.succeeded, job.failed) == (6, 6, 5, 1)
    assert job.percent == 100
    closed = Document.objects.filter(close_state=CloseState.CLOSED)
    assert set(closed.values_list("number", flat=True)) == {d.number for d in ready}
    assert (
        closed.filter(close_kind="manual", closed_by=buyer, close_reason="completed").count() == 5
    )
    audit = AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED)
    assert audit.count() == 5
    assert set(audit.values_list("request_id", flat=True)) == {f"batch:{job.pk}"}
    failed = batch_results(job).get(state=ItemState.FAILED)
    assert failed.label == short.number and "remark" in failed.message
    # Running the same job again processes nothing and closes nothing twice.
    assert batch_work(job.pk) == 0
    assert AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED).count() == 5
    assert audit_chain_verify().intact


def test_exception_close_with_remark_and_route_goes_to_approval(
    org: Org, buyer: User, run_inline: Callable[..., Any]
) -> None:
    route = ApprovalRoute.objects.create(
        name="例外结案 exception", action="close", condition="exception"
    )
    ApprovalStep.objects.create(
        route=route, order=1, name="主管 supervisor", role=Role.objects.get(code="supervisor")
    )
    short = _short(make_document(PO, org.dept_a))
    ready = complete(make_document(PO, org.dept_a))
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[short.number, ready.number],
        reason_code="supplier_cannot_deliver",
        remark="supplier stopped the line",
    )
    job = batch_preview(actor=buyer, job=job)
    assert job.predicted == {"needs_approval": 1, "would_close": 1}
    run_inline(lambda: batch_start(actor=buyer, job=job))
    short.refresh_from_db()
    ready.refresh_from_db()
    assert short.close_state == CloseState.CLOSE_PENDING
    assert ready.close_state == CloseState.CLOSED
    assert CloseRequest.objects.get(document=short).state == RequestState.PENDING
    outcomes = dict(batch_results(job).values_list("label", "outcome"))
    assert outcomes == {short.number: "requested", ready.number: "closed"}


def test_selection_by_filter(org: Org, buyer: User) -> None:
    ready = [complete(make_document(PO, org.dept_a)) for _ in range(2)]
    _short(make_document(PO, org.dept_b))
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        queue_filter={"verdict": "ready"},
        reason_code="completed",
    )
    assert job.total == 2
    assert set(batch_results(job).values_list("label", flat=True)) == {d.number for d in ready}
    with pytest.raises(InvalidInput, match="matches no document"):
        batch_create(
            actor=buyer,
            action=BatchAction.CLOSE,
            doc_type=PO,
            queue_filter={"number": "does-not-exist"},
            reason_code="completed",
        )


def test_bad_input_is_refused_clearly(org: Org, buyer: User) -> None:
    doc = make_document(PO, org.dept_a)
    with pytest.raises(InvalidInput, match="no purchase_order numbered NOPE-1"):
        batch_create(
            actor=buyer,
            action=BatchAction.CLOSE,
            doc_type=PO,
            numbers=[doc.number, "NOPE-1"],
            reason_code="completed",
        )
    with pytest.raises(InvalidInput, match="unknown close reason"):
        batch_create(
            actor=buyer,
            action=BatchAction.CLOSE,
            doc_type=PO,
            numbers=[doc.number],
            reason_code="nope",
        )
    with pytest.raises(InvalidInput, match="unknown batch action"):
        batch_create(actor=buyer, action="explode", doc_type=PO, numbers=[doc.number])
    nobody = user_with_role("batch-nobody", None)
    with pytest.raises(PermissionDenied, match=r"batch\.run"):
        batch_create(
            actor=nobody,
            action=BatchAction.CLOSE,
            doc_type=PO,
            numbers=[doc.number],
            reason_code="completed",
        )


def test_out_of_scope_documents_are_missing_and_a_lost_grant_refuses_per_item(
    org: Org, run_inline: Callable[..., Any]
) -> None:
    buyer_a = user_with_role("batch-buyer-a", "operator", org.dept_a)
    mine = complete(make_document(PO, org.dept_a))
    theirs = complete(make_document(PO, org.dept_b))
    # Another unit's document answers like a number that does not exist (issue 12).
    with pytest.raises(InvalidInput, match=f"no purchase_order numbered {theirs.number}$"):
        batch_create(
            actor=buyer_a,
            action=BatchAction.CLOSE,
            doc_type=PO,
            numbers=[mine.number, theirs.number],
            reason_code="completed",
        )
    job = batch_create(
        actor=buyer_a,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[mine.number],
        reason_code="completed",
    )
    # The grant ends between creation and run: the item is refused, nothing closes.
    Grant.objects.filter(user=buyer_a).update(revoked_at=timezone.now())
    run_inline(lambda: batch_start(actor=buyer_a, job=job))
    result = batch_results(job).get()
    assert result.state == ItemState.FAILED and "close.direct" in result.message
    mine.refresh_from_db()
    assert mine.close_state == CloseState.OPEN


def test_cancel_then_resume_finishes_without_duplicates(
    org: Org, buyer: User, run_inline: Callable[..., Any]
) -> None:
    docs = [complete(make_document(PO, org.dept_a)) for _ in range(6)]
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in docs],
        reason_code="completed",
    )
    job = batch_preview(actor=buyer, job=job)
    # Start without running the workers, process one chunk by hand, then cancel.
    batch_start(actor=buyer, job=job)
    job.refresh_from_db()
    assert job.state == BatchState.QUEUED
    batch_cancel(actor=buyer, job=job)
    assert batch_work(job.pk) == 0
    job.refresh_from_db()
    assert job.state == BatchState.CANCELLED and job.processed == 0
    run_inline(lambda: batch_resume(actor=buyer, job=job))
    job.refresh_from_db()
    assert job.state == BatchState.DONE and job.succeeded == 6
    assert AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED).count() == 6
    with pytest.raises(InvalidInput, match="done"):
        batch_resume(actor=buyer, job=job)


def test_partial_progress_then_crash_then_resume(
    org: Org, buyer: User, run_inline: Callable[..., Any]
) -> None:
    docs = [complete(make_document(PO, org.dept_a)) for _ in range(5)]
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in docs],
        reason_code="completed",
    )
    batch_start(actor=buyer, job=job)  # the worker "crashes" before it starts
    # One worker takes two items and stops (as if killed right after its chunk committed).
    from closeout.batches import process

    original = process._claim
    calls = {"n": 0}

    def claim_once(job_id: int, size: int) -> list[Any]:
        calls["n"] += 1
        return original(job_id, 2) if calls["n"] == 1 else []

    process._claim = claim_once  # type: ignore[assignment]
    try:
        batch_work(job.pk)
    finally:
        process._claim = original  # type: ignore[assignment]
    job.refresh_from_db()
    assert job.processed == 2 and job.state == BatchState.RUNNING
    run_inline(lambda: batch_resume(actor=buyer, job=job))
    job.refresh_from_db()
    assert (job.state, job.processed, job.succeeded) == (BatchState.DONE, 5, 5)
    assert AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED).count() == 5


def test_batch_approve_and_reject(org: Org, run_inline: Callable[..., Any]) -> None:
    route = ApprovalRoute.objects.create(name="全部 all", action="close")
    ApprovalStep.objects.create(
        route=route, order=1, name="主管 supervisor", role=Role.objects.get(code="supervisor")
    )
    requester = user_with_role("batch-req", "operator", org.company)
    boss = user_with_role("batch-boss", "supervisor", org.company)
    docs = [complete(make_document(PO, org.dept_a)) for _ in range(3)]
    requests = [
        close_request_submit(actor=requester, document=d, reason_code="completed") for d in docs
    ]
    job = batch_create(
        actor=boss, action=BatchAction.APPROVE, request_ids=[r.pk for r in requests[:2]]
    )
    run_inline(lambda: batch_start(actor=boss, job=job))
    assert [Document.objects.get(pk=d.pk).close_state for d in docs[:2]] == ["closed", "closed"]
    with pytest.raises(InvalidInput, match="comment"):
        batch_create(actor=boss, action=BatchAction.REJECT, request_ids=[requests[2].pk])
    job = batch_create(
        actor=boss,
        action=BatchAction.REJECT,
        request_ids=[requests[2].pk],
        comment="数量不对 wrong quantity",
    )
    run_inline(lambda: batch_start(actor=boss, job=job))
    assert CloseRequest.objects.get(pk=requests[2].pk).state == RequestState.REJECTED
    # A requester who may approve cannot batch-approve their own request: a per-item refusal.
    # (One who may not approve at all is answered as if the request did not exist.)
    with pytest.raises(InvalidInput, match="no close request"):
        batch_create(actor=requester, action=BatchAction.APPROVE, request_ids=[requests[0].pk])
    requester = user_with_role("batch-req-sup", "supervisor", org.company)
    again = close_request_submit(actor=requester, document=docs[2], reason_code="completed")
    own = batch_create(actor=requester, action=BatchAction.APPROVE, request_ids=[again.pk])
    run_inline(lambda: batch_start(actor=requester, job=own))
    item = batch_results(own).get()
    assert item.state == ItemState.FAILED and "separation of duties" in item.message


def test_released_value_predicted(org: Org, buyer: User) -> None:
    doc = make_document(PO, org.dept_a, lines=[(10, 3)])
    post(doc, EventKind.RECEIPT, 1, 4)
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[doc.number],
        reason_code="short_delivery_accepted",
        remark="rest cancelled",
    )
    job = batch_preview(actor=buyer, job=job)
    assert job.predicted_released_value == Decimal("18")
