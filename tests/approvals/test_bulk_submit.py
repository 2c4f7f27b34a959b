"""The bulk close-request submit (`close_requests_submit`): each item gets what a single submit
gives it (checks, request record, close or pending state, audit events, notifications), and a
refused item changes nothing while the others go through."""

from typing import Any

from django.contrib.auth.models import User

from closeout.approvals.models import CloseRequest, RequestState
from closeout.approvals.submit_bulk import CloseRequestItem, close_requests_submit
from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.core.errors import DomainError
from closeout.core.notice_kinds import NoticeKind
from closeout.documents.models import CloseState, Document
from tests.approvals.conftest import (
    closed_po,
    fresh,
    inbox,
    make_route,
    short_po,
    submit_close,
    two_line_po,
)
from tests.factories import Org, actions_since, audit_head, user_with_role


def _item(document: Document, **kwargs: Any) -> CloseRequestItem:
    values: dict[str, Any] = {"reason_code": "supplier_cannot_deliver", "remark": "short"}
    values.update(kwargs)
    return CloseRequestItem(document=document, **values)


def _close_event(document: Document) -> AuditEvent:
    return AuditEvent.objects.get(
        object_type="document",
        object_id=str(document.pk),
        action=AuditAction.DOCUMENT_CLOSED,
    )


def test_a_routeless_bulk_request_records_what_a_single_one_does(org: Org, operator: User) -> None:
    make_route("reopen only", action="reopen", steps=(("finance", "财务"),))
    single, bulk = short_po(org.team_a1), short_po(org.team_a1)
    one = submit_close(operator, single)
    [many] = close_requests_submit(actor=operator, items=[_item(bulk)])
    assert isinstance(many, CloseRequest)
    one.refresh_from_db()
    many.refresh_from_db()
    assert many.state == one.state == RequestState.EXECUTED
    assert many.checklist == one.checklist
    assert (many.exception, many.open_value, many.steps) == (one.exception, one.open_value, [])
    assert fresh(bulk).close_state == fresh(single).close_state == CloseState.CLOSED
    single_event, bulk_event = _close_event(single), _close_event(bulk)
    assert bulk_event.data == single_event.data
    assert bulk_event.object_repr == bulk.label
    bulk_doc, single_doc = fresh(bulk), fresh(single)
    fields = (
        "close_kind",
        "close_reason",
        "closed_by_id",
        "close_date",
        "released_value",
        "version",
    )
    assert [getattr(bulk_doc, f) for f in fields] == [getattr(single_doc, f) for f in fields]
    assert list(bulk_doc.lines.values_list("close_state", "released_value")) == list(
        single_doc.lines.values_list("close_state", "released_value")
    )
    assert (bulk_event.request_id, single_event.request_id) == (str(many.pk), str(one.pk))
    executed = inbox(operator, NoticeKind.REQUEST_EXECUTED)
    assert [n.link for n in executed] == [f"/requests/{one.pk}/", f"/requests/{many.pk}/"]
    assert audit_chain_verify().intact


def test_each_bulk_item_stands_alone(org: Org, operator: User, supervisor: User) -> None:
    make_route("例外结案审批 exception close", condition="exception")
    pending = short_po(org.team_a1)  # an exception: the route applies
    ready = two_line_po(org.team_a1)  # no exception: no route, closes at once
    closed = closed_po(org.team_a1, operator)
    no_remark = short_po(org.team_a1)  # an exception needs its remark
    outside = short_po(org.dept_b)
    narrow = user_with_role("op-a", "operator", org.dept_a)
    before = audit_head()
    results = close_requests_submit(
        actor=narrow,
        items=[
            _item(pending),
            _item(ready, reason_code="completed", remark=""),
            _item(closed),
            _item(no_remark, remark=""),
            _item(outside),
            _item(pending),  # named again: it waits for approval now
            _item(ready, reason_code="no_such_reason"),
        ],
    )
    first, second, *refused = results
    assert isinstance(first, CloseRequest) and first.state == RequestState.PENDING
    assert isinstance(second, CloseRequest) and second.state == RequestState.EXECUTED
    assert all(isinstance(r, DomainError) for r in refused), refused
    assert fresh(pending).close_state == CloseState.CLOSE_PENDING
    assert fresh(ready).close_state == CloseState.CLOSED
    for document in (closed, no_remark, outside):
        assert not CloseRequest.objects.filter(document=document).exists()
    assert fresh(no_remark).close_state == fresh(outside).close_state == CloseState.OPEN
    assert CloseRequest.objects.filter(document=pending).count() == 1
    assert CloseRequest.objects.filter(document=ready).count() == 1
    assert actions_since(before, object_id=pending.pk) == [AuditAction.CLOSE_REQUESTED]
    assert actions_since(before, object_id=ready.pk) == [AuditAction.DOCUMENT_CLOSED]
    assert actions_since(before, object_id=no_remark.pk) == []
    assert [n.link for n in inbox(supervisor)] == [f"/requests/{first.pk}/"]
    assert audit_chain_verify().intact
