"""Batch undo finds every close the batch made (issue 16 §2): closes through a close request
that executed at once, and closes of lines only (the header stayed open), undone by reopening
exactly those lines through the reopen path and its rules."""

# The fixtures of test_batch_undo are imported, so the tests' parameters name them again.
# ruff: noqa: F811

from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import translation

from closeout.approvals.models import CloseRequest, RequestState
from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.models import ItemState
from closeout.batches.selectors import batch_results
from closeout.batches.undo import batch_undo_create, item_messages
from closeout.closing.selectors import open_commitments_by_item
from closeout.closing.services import document_hold
from closeout.documents.models import CloseState, Document, EventKind
from closeout.reports.verification import batch_verify
from tests.approvals.conftest import make_route
from tests.batches.test_batch_undo import (  # the fixtures, the batch and its undo
    _inline_tasks,  # noqa: F401
    boss,  # noqa: F401
    close_batch,
    org,  # noqa: F401
    run_inline,  # noqa: F401
    undo,
)
from tests.factories import PO, Org, an_item, make_document, post, set_policy

pytestmark = pytest.mark.django_db


def short_po(org: Org, lines: tuple[tuple[int, int], ...] = ((10, 5),)) -> Document:
    """Each line 6 received, invoiced and paid: a close releases the rest."""
    document = make_document(PO, org.dept_a, lines, item=an_item("UNDO-ITEM"))
    for line_no in range(1, len(lines) + 1):
        post(document, EventKind.RECEIPT, line_no, 6)
        post(document, EventKind.INVOICE, line_no, 6, 30)
        post(document, EventKind.PAYMENT, line_no, 0, 30)
    document.refresh_from_db()
    return document


def lines_of(document: Document) -> list[tuple[int, str, Decimal, Decimal]]:
    return [
        (line.line_no, line.close_state, line.released_qty, line.released_value)
        for line in document.lines.order_by("line_no")
    ]


def test_a_close_request_that_executed_at_once_is_undone(
    org: Org, boss: User, run_inline: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch saw a route (so it submitted a request), but when the request was submitted
    none applied: the close executed at once, its audit event carrying the request's id."""
    direct, requested = short_po(org), short_po(org)
    item_id = direct.lines.get().item_id
    before = open_commitments_by_item([item_id])[item_id].on_order
    real_choose = __import__("closeout.batches.preview", fromlist=["route_choose"]).route_choose

    def stale_route(*, document: Document, **kwargs: Any) -> Any:
        if document.pk == requested.pk:
            return SimpleNamespace(name="stale route")
        return real_choose(document=document, **kwargs)

    monkeypatch.setattr("closeout.batches.preview.route_choose", stale_route)
    job = close_batch(boss, [direct, requested], run_inline)
    item = batch_results(job).get(document=requested)
    assert (item.state, item.outcome) == (ItemState.DONE, "requested")
    request = CloseRequest.objects.get(pk=item.request_id)
    assert request.state == RequestState.EXECUTED and request.route_id is None
    assert "closed at once" in item.message
    closed = AuditEvent.objects.get(action=AuditAction.DOCUMENT_CLOSED, object_id=requested.pk)
    assert closed.request_id == str(request.pk)
    assert open_commitments_by_item([item_id]) == {}
    assert batch_verify(job_id=job.pk, actor=None).passed

    undo_job = undo(boss, job, run_inline)
    assert undo_job.total == 2
    assert undo_job.predicted == {"would_reopen": 2}
    assert (undo_job.succeeded, undo_job.skipped, undo_job.failed) == (2, 0, 0)
    for document in (direct, requested):
        document.refresh_from_db()
        assert document.close_state == CloseState.OPEN
        assert lines_of(document) == [(1, "open", 0, 0)]
    assert open_commitments_by_item([item_id])[item_id].on_order == before
    assert batch_verify(job_id=undo_job.pk, actor=None).passed


def test_a_request_left_pending_is_not_undone(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    """A close request that waits for approvers is theirs to decide: the undo leaves it."""
    routed, direct = short_po(org), short_po(org)
    make_route("big closes", doc_type=PO, steps=(("finance", "财务"),), min_total=Decimal(1))
    Document.objects.filter(pk=direct.pk).update(total_amount_company=0)
    job = close_batch(boss, [routed, direct], run_inline)
    routed.refresh_from_db()
    assert routed.close_state == CloseState.CLOSE_PENDING
    undo_job = batch_undo_create(actor=boss, job_id=job.pk)
    assert undo_job.total == 1
    assert undo_job.items.get().document_id == direct.pk


def held_line_po(org: Org, boss: User) -> Document:
    """Two short lines, the second on hold; the policy lets a close through a held line, so a
    batch closes line 1 only and the header stays open."""
    set_policy(PO, rule_settings={"no_line_on_hold": {"enabled": False}})
    document = short_po(org, ((10, 5), (8, 5)))
    document_hold(actor=boss, document=document, reason="disputed", line_nos=[2])
    document.refresh_from_db()
    return document


def test_a_line_only_close_is_undone_by_reopening_those_lines(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    document = held_line_po(org, boss)
    item_id = document.lines.get(line_no=1).item_id
    before_lines = lines_of(document)
    before = open_commitments_by_item([item_id])[item_id].on_order
    job = close_batch(boss, [document], run_inline)
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
    assert lines_of(document)[0] == (1, "closed", Decimal(4), Decimal(20))
    assert AuditEvent.objects.filter(
        action=AuditAction.LINES_CLOSED, request_id=f"batch:{job.pk}"
    ).exists()
    assert open_commitments_by_item([item_id])[item_id].on_order == before - 4

    undo_job = undo(boss, job, run_inline)
    assert undo_job.predicted == {"would_reopen": 1}
    assert undo_job.predicted_released_value == Decimal(20)
    item = batch_results(undo_job).get(document=document)
    assert (item.state, item.outcome) == (ItemState.DONE, "reopened")
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
    assert lines_of(document) == before_lines
    assert document.released_value == 0
    assert open_commitments_by_item([item_id])[item_id].on_order == before
    event = AuditEvent.objects.get(action=AuditAction.LINES_REOPENED)
    assert event.request_id == f"batch:{undo_job.pk}"
    assert event.data["lines"] == [
        {"line": 1, "restored_qty": "4.0000", "restored_value": "20.0000"}
    ]
    assert (event.data["from"], event.data["to"]) == ("open", "open")
    assert batch_verify(job_id=undo_job.pk, actor=None).passed
    assert audit_chain_verify().intact


def test_a_line_only_close_changed_since_or_under_a_route_is_not_undone(
    org: Org, boss: User, run_inline: Callable[..., Any]
) -> None:
    evented, routed = held_line_po(org, boss), held_line_po(org, boss)
    job = close_batch(boss, [evented, routed], run_inline)
    post(evented, EventKind.INVOICE, 2, 1, 5)  # quarantined on the held line: a new event
    make_route("undo reopen", action="reopen", steps=(("finance", "财务"),), doc_type=PO)

    undo_job = undo(boss, job, run_inline)
    reasons = {
        item.document_id: (item.state, item.params.get("reason"))
        for item in batch_results(undo_job)
    }
    assert reasons == {
        evented.pk: (ItemState.SKIPPED, "new_events"),
        routed.pk: (ItemState.FAILED, "lines_route"),
    }
    refused = batch_results(undo_job).get(document=routed)
    with translation.override("zh-hans"):
        assert routed.number in item_messages(refused)[0]
    for document in (evented, routed):
        document.refresh_from_db()
        assert lines_of(document)[0][1] == "closed"
    assert CloseRequest.objects.filter(action="reopen").count() == 0
