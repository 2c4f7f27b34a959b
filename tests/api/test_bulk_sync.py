"""Bulk ERP sync: POST /api/documents/bulk and POST /api/events/bulk answer every item in
request order, post events set-based with the guarantees of posting them one by one, and never
lose the good items for a bad one."""

from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.closing.services import document_close, document_hold
from closeout.core.companies import company_of
from closeout.core.rows import COPY_FROM, rows_insert
from closeout.documents.models import BusinessEvent, Document, Line
from tests.api.conftest import Api, ApiFactory, error_of, po_body
from tests.api.test_events import ev
from tests.factories import PO, Org, audit_head, make_document, ready_document, user_with_role

pytestmark = pytest.mark.django_db


def _closed(org: Org, number: str) -> Document:
    document = ready_document(PO, org.dept_a, number=number)
    actor = user_with_role(f"closer-{number}", "operator", org.company)
    return document_close(actor=actor, document=document, reason_code="completed").document


def _mixed(org: Org) -> list[Any]:
    make_document(PO, org.dept_a, ((10, 5), (3, 2)), number="BK-1")
    make_document(PO, org.dept_b, ((10, 5),), number="BK-B")
    make_document("project_stage", org.dept_a, ((1, 100),), number="BK-PS")
    _closed(org, "BK-CLOSED")
    held = make_document(PO, org.dept_a, ((10, 5), (10, 5)), number="BK-HELD")
    document_hold(
        actor=user_with_role("holder", "admin", org.company),
        document=held,
        reason="dispute",
        line_nos=[2],
    )
    return [
        ev("BK-1", "B-1"),
        ev("BK-1", "B-1"),  # a repeat within the request
        ev("BK-CLOSED", "B-2"),
        ev("BK-1", "B-3", quantity=2.5),  # not a decimal string
        ev("BK-1", "B-4", line_no=9),
        ev("NOPE", "B-5"),
        ev("BK-1", "B-6", pending=True),
        ev("BK-1", "B-7", kind="return", quantity="50"),  # below zero: refused
        ev("BK-1", "B-1", quantity="5"),  # the same external id with another quantity
        ev("BK-HELD", "B-8", line_no=2),
        ev("BK-HELD", "B-9", line_no=1, quantity="3"),
        ev("BK-1", "B-10", line_no=2, quantity="3"),
        ev("BK-PS", "B-11", doc_type="project_stage", kind="acceptance", line_no=None),
        "not an object",
    ]


def _answers(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["index"], r["outcome"], r["code"], r["reason"]) for r in body["results"]]


def test_bulk_events_answer_like_one_by_one(integration: Api, org: Org) -> None:
    """The same items give the same outcomes, codes and reasons, in order, through the bulk
    endpoint as through the one-by-one endpoint; and the same measures and audit events."""
    items = _mixed(org)
    seq = audit_head()
    bulk = integration.post("/api/events/bulk", {"events": items})
    assert bulk.status_code == 200, bulk.content
    bulk_body = bulk.json()
    outcomes = [(r["index"], r["outcome"]) for r in bulk_body["results"]]
    assert outcomes == [
        (0, "applied"),
        (1, "duplicate"),
        (2, "quarantined"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "pending"),
        (7, "rejected"),
        (8, "rejected"),
        (9, "quarantined"),
        (10, "applied"),
        (11, "applied"),
        (12, "applied"),
        (13, "rejected"),
    ]
    results = bulk_body["results"]
    assert results[1]["event_id"] == results[0]["event_id"]
    assert results[7]["code"] == "event_refused" and results[8]["code"] == "event_conflict"
    assert "line 2 is on_hold" in results[9]["reason"]
    assert all(r["message"] for r in results)
    bulk_audit = list(
        AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("action", flat=True)
    )
    lines = {
        (line.document.number, line.line_no): line.fulfilled_qty
        for line in Line.objects.select_related("document")
    }
    # The same items again, one by one: all repeats now, with the same refusals.
    again = integration.post("/api/events", {"events": items}).json()
    for bulk_answer, single in zip(_answers(bulk_body), _answers(again), strict=True):
        if bulk_answer[1] in ("applied", "pending", "quarantined"):
            assert single[1] == "duplicate"
        else:
            assert single == bulk_answer
    assert lines[("BK-1", 1)] == Decimal(4) and lines[("BK-1", 2)] == Decimal(3)
    assert lines[("BK-HELD", 1)] == Decimal(3) and lines[("BK-HELD", 2)] == Decimal(0)
    # One audit event per change: 4 applied, 2 quarantined, 1 pending; nothing for the rest.
    assert sorted(bulk_audit) == sorted(
        [AuditAction.EVENT_APPLIED] * 4
        + [AuditAction.EVENT_QUARANTINED] * 2
        + [AuditAction.EVENT_PENDING]
    )
    assert BusinessEvent.objects.filter(external_id__startswith="B-").count() == 7
    assert Document.objects.get(number="BK-PS").accepted_on is not None
    assert audit_chain_verify().intact


def test_bulk_events_same_state_as_one_by_one(api_for: ApiFactory, org: Org) -> None:
    """Posting the items one by one on a twin of each document leaves the same measures and
    the same audit actions as posting them in bulk."""
    api = api_for("integration")
    make_document(PO, org.dept_a, ((10, 5), (3, 2)), number="TW-BULK")
    make_document(PO, org.dept_a, ((10, 5), (3, 2)), number="TW-ONE")
    kinds = [("receipt", "6"), ("receipt", "3"), ("return", "2"), ("return", "9"), ("receipt", "1")]
    for name in ("BULK", "ONE"):
        items = [
            ev(f"TW-{name}", f"TW-{name}-{i}", kind=kind, quantity=qty, line_no=1 + i % 2)
            for i, (kind, qty) in enumerate(kinds)
        ]
        path = "/api/events/bulk" if name == "BULK" else "/api/events"
        body = api.post(path, {"events": items}).json()
        assert [r["outcome"] for r in body["results"]] == [
            "applied",
            "applied",
            "applied",
            "rejected",
            "applied",
        ]
    twins = [Document.objects.get(number=f"TW-{n}") for n in ("BULK", "ONE")]
    measures = [
        [(line.line_no, line.fulfilled_qty) for line in d.lines.order_by("line_no")] for d in twins
    ]
    assert measures[0] == measures[1] == [(1, Decimal(5)), (2, Decimal(3))]
    assert twins[0].version == twins[1].version
    assert twins[0].last_activity_at == twins[1].last_activity_at
    actions = [
        sorted(
            AuditEvent.objects.filter(object_type="document", object_id=str(d.pk)).values_list(
                "action", "data"
            ),
            key=lambda a: str(a),
        )
        for d in twins
    ]
    assert [a for a, _ in actions[0]] == [a for a, _ in actions[1]]


def test_bulk_events_take_a_few_queries(integration: Api, org: Org) -> None:
    numbers = [f"QC-{i}" for i in range(20)]
    for number in numbers:
        make_document(PO, org.dept_a, ((10, 5), (10, 5)), number=number)
    items = [ev(n, f"QC-{n}-{line}", line_no=line) for n in numbers for line in (1, 2)]
    with CaptureQueriesContext(connection) as queries:
        body = integration.post("/api/events/bulk", {"events": items}).json()
    assert body["counts"] == {"applied": 40}
    # Not ~13 per event: a fixed number per request (auth, look-ups, locks, writes, audit).
    assert len(queries) < 40, [q["sql"][:80] for q in queries.captured_queries]


def test_bulk_events_replay_is_idempotent(integration: Api, org: Org) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="RP-1")
    items = [ev("RP-1", "RP-A", quantity="2"), ev("RP-1", "RP-B", quantity="3")]
    first = integration.post("/api/events/bulk", {"events": items}).json()
    assert first["counts"] == {"applied": 2}
    second = integration.post("/api/events/bulk", {"events": items}).json()
    assert second["counts"] == {"duplicate": 2}
    assert [r["event_id"] for r in second["results"]] == [r["event_id"] for r in first["results"]]
    keyed = integration.post(
        "/api/events/bulk", {"events": items}, headers={"Idempotency-Key": "rp-1"}
    )
    replay = integration.post(
        "/api/events/bulk", {"events": items}, headers={"Idempotency-Key": "rp-1"}
    )
    assert replay["Idempotent-Replay"] == "true" and replay.content == keyed.content
    assert Line.objects.get(document__number="RP-1").fulfilled_qty == Decimal(5)
    assert BusinessEvent.objects.filter(document__number="RP-1").count() == 2


def test_bulk_events_out_of_scope_items_are_missing(api_for: ApiFactory, org: Org) -> None:
    make_document(PO, org.dept_a, number="SC-A")
    make_document(PO, org.dept_b, number="SC-B")
    api = api_for("integration", unit=org.dept_a)
    body = api.post("/api/events/bulk", {"events": [ev("SC-A", "S-1"), ev("SC-B", "S-2")]}).json()
    assert [r["outcome"] for r in body["results"]] == ["applied", "rejected"]
    assert body["results"][1]["code"] == "not_found"
    assert body["results"][1]["reason"] == "event: no purchase_order numbered 'SC-B'"
    assert not BusinessEvent.objects.filter(external_id="S-2").exists()


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_bulk_needs_sync_permission(api_for: ApiFactory, role: str, org: Org) -> None:
    make_document(PO, org.dept_a, number="PM-1")
    api = api_for(role)
    assert api.post("/api/events/bulk", {"events": [ev("PM-1", "PM-1")]}).status_code == 403
    body = {"documents": [{**po_body(), "doc_type": PO, "number": "PM-NEW"}]}
    assert api.post("/api/documents/bulk", body).status_code == 403
    assert not Document.objects.filter(number="PM-NEW").exists()


def test_bulk_request_too_large_is_refused(integration: Api) -> None:
    many = [ev("X", f"E{i}") for i in range(1001)]
    response = integration.post("/api/events/bulk", {"events": many})
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "events"
    assert "1000" in error_of(response)["message"]
    docs = [{**po_body(), "doc_type": PO, "number": f"N{i}"} for i in range(1001)]
    response = integration.post("/api/documents/bulk", {"documents": docs})
    assert response.status_code == 422 and error_of(response)["details"]["field"] == "documents"
    assert integration.post("/api/documents/bulk", {"documents": []}).status_code == 422


def test_bulk_documents_per_item(api_for: ApiFactory, integration: Api, org: Org) -> None:
    _closed(org, "BD-CLOSED")
    make_document(PO, org.dept_a, ((10, 5),), number="BD-OLD")
    make_document(PO, org.dept_b, ((10, 5),), number="BD-B")
    seq = audit_head()
    items = [
        {**po_body(external_id="X-1"), "doc_type": PO, "number": "BD-NEW"},
        {**po_body(), "doc_type": PO, "number": "BD-CLOSED"},
        {**po_body(), "doc_type": PO, "number": "BD-OLD"},
        {**po_body(org_code="NOWHERE"), "doc_type": PO, "number": "BD-X"},
        {**po_body(lines=[{"line_no": 1, "planned_qty": "-1", "unit_price": "1"}]), "number": "Z"},
        {**po_body(external_id="X-1"), "doc_type": PO, "number": "BD-CLASH"},
        {**po_body(partner="NO-SUCH"), "doc_type": PO, "number": "BD-P"},
        {**po_body(), "doc_type": PO, "number": "BD-NEW"},  # again: an update, unchanged
        [],
    ]
    response = integration.post("/api/documents/bulk", {"documents": items})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(r["index"], r["number"], r["outcome"], r["code"]) for r in results] == [
        (0, "BD-NEW", "created", ""),
        (1, "BD-CLOSED", "rejected", "document_locked"),
        (2, "BD-OLD", "updated", ""),
        (3, "BD-X", "rejected", "invalid_input"),
        (4, "Z", "rejected", "invalid_input"),
        (5, "BD-CLASH", "rejected", "conflict"),
        (6, "BD-P", "rejected", "invalid_input"),
        (7, "BD-NEW", "updated", ""),
        (8, None, "rejected", "invalid_input"),
    ]
    assert results[3]["errors"][0]["field"] == "org_unit"
    assert "closed" in results[1]["reason"] and all(r["message"] for r in results)
    new = Document.objects.get(number="BD-NEW")
    assert new.lines.count() == 2 and new.total_amount == Decimal("455.00")
    assert new.lines.get(line_no=1).item is not None
    assert not Document.objects.filter(number__in=["BD-X", "BD-CLASH", "BD-P", "Z"]).exists()
    actions = list(AuditEvent.objects.filter(seq__gt=seq).values_list("action", flat=True))
    assert sorted(actions) == sorted(
        [
            AuditAction.DOCUMENT_CREATED,
            AuditAction.DOCUMENT_UPDATED,
            AuditAction.DOCUMENT_CHANGE_REFUSED,
        ]
    )
    # A caller scoped to department A: B's document is refused, its own created.
    scoped = api_for("integration", unit=org.dept_a)
    body = scoped.post(
        "/api/documents/bulk",
        {
            "documents": [
                {**po_body(org_code="D-B"), "doc_type": PO, "number": "BD-B"},
                {**po_body(), "doc_type": PO, "number": "BD-A2"},
            ]
        },
    ).json()
    assert [(r["outcome"], r["code"]) for r in body["results"]] == [
        ("rejected", "permission_denied"),
        ("created", ""),
    ]


def test_bulk_messages_follow_the_language(integration: Api, org: Org) -> None:
    make_document(PO, org.dept_a, ((10, 5),), number="LG-1")
    zh = integration.post("/api/events/bulk", {"events": [ev("LG-1", "LG-A")]}).json()
    en = integration.post(
        "/api/events/bulk", {"events": [ev("LG-1", "LG-A")]}, headers={"Accept-Language": "en"}
    ).json()
    with translation.override("zh-hans"):
        assert zh["results"][0]["message"] != "Event applied."
    assert en["results"][0]["message"] == "Event already posted: nothing changed."


def test_bulk_documents_resent_unchanged_are_set_based(
    api_for: ApiFactory, integration: Api, org: Org
) -> None:
    """A nightly full re-send: stored documents sent again unchanged are answered `updated` at
    their version with nothing written and no audit event, in a fixed number of queries; a
    changed, closed or out-of-scope one in the same request is handled as one by one."""
    numbers = [f"RS-{i}" for i in range(30)]
    first = [
        {**po_body(external_id=f"RS-X-{n}", expected_date="2026-03-01"), "doc_type": PO,
         "number": n}
        for n in numbers
    ]  # fmt: skip
    created = integration.post("/api/documents/bulk", {"documents": first}).json()
    assert created["counts"] == {"created": 30}
    versions = {r["number"]: r["version"] for r in created["results"]}
    seq = audit_head()
    with CaptureQueriesContext(connection) as queries:
        again = integration.post("/api/documents/bulk", {"documents": first}).json()
    assert again["counts"] == {"updated": 30}
    assert {r["number"]: r["version"] for r in again["results"]} == versions
    assert audit_head() == seq
    # Not ~20 per document: a fixed number per request.
    assert len(queries) < 30, "\n".join(q["sql"][:150] for q in queries.captured_queries)

    _closed(org, "RS-CLOSED")
    make_document(PO, org.dept_b, ((10, 5),), number="RS-B")
    changed = {**first[1], "expected_date": "2026-04-01"}
    new_line = {**first[2], "lines": [*first[2]["lines"], {"line_no": 3, "planned_qty": "1",
                                                            "unit_price": "1"}]}  # fmt: skip
    new_item = {**first[3], "lines": [{**first[3]["lines"][0], "item": "NEW-ITEM-RS"}]}
    items = [
        first[0],
        changed,
        new_line,
        new_item,
        {**po_body(), "doc_type": PO, "number": "RS-CLOSED"},
        {**first[4], "external_id": "RS-X-RS-0"},  # another document's external id
        {**first[5], "partner": "NO-SUCH"},
        first[6],
    ]
    seq = audit_head()
    response = integration.post("/api/documents/bulk", {"documents": items})
    answers = [(r["number"], r["outcome"], r["code"]) for r in response.json()["results"]]
    assert answers == [
        ("RS-0", "updated", ""),
        ("RS-1", "updated", ""),
        ("RS-2", "updated", ""),
        ("RS-3", "updated", ""),
        ("RS-CLOSED", "rejected", "document_locked"),
        ("RS-4", "rejected", "conflict"),
        ("RS-5", "rejected", "invalid_input"),
        ("RS-6", "updated", ""),
    ]
    after = {d.number: d for d in Document.objects.filter(number__in=numbers)}
    assert [after[n].version - versions[n] for n in numbers[:7]] == [0, 1, 1, 1, 0, 0, 0]
    assert str(after["RS-1"].expected_date) == "2026-04-01"
    assert after["RS-2"].lines.count() == 3
    assert after["RS-3"].lines.get(line_no=1).item.code == "NEW-ITEM-RS"  # type: ignore[union-attr]
    actions = list(AuditEvent.objects.filter(seq__gt=seq).values_list("action", flat=True))
    assert sorted(actions) == sorted(
        [AuditAction.DOCUMENT_CHANGE_REFUSED] + [AuditAction.DOCUMENT_UPDATED] * 3
    ), actions
    # A caller scoped to department A may not re-send B's document, even unchanged.
    scoped = api_for("integration", unit=org.dept_a)
    body = scoped.post(
        "/api/documents/bulk",
        {"documents": [{**po_body(org_code="D-B", lines=[{"line_no": 1, "planned_qty": "10",
                                                          "unit_price": "5"}]),
                        "doc_type": PO, "number": "RS-B"}, first[0]]},
    ).json()  # fmt: skip
    assert [(r["outcome"], r["code"]) for r in body["results"]] == [
        ("rejected", "permission_denied"),
        ("updated", ""),
    ]
    assert audit_chain_verify().intact


def test_bulk_many_rows_read_back_as_sent(integration: Api, org: Org) -> None:
    """Enough documents, lines and events for PostgreSQL's COPY path (core.rows): every row
    reads back with the values sent and its defaults, and a second request sees them."""
    line = {"line_no": 1, "planned_qty": "10", "unit_price": "5.50", "item": "BOLT-1"}
    documents = [
        {**po_body(external_id=f"MR-{i}", expected_date="2026-03-01", lines=[line]),
         "doc_type": PO, "number": f"MR-{i:04d}"}
        for i in range(COPY_FROM + 10)
    ]  # fmt: skip
    body = integration.post("/api/documents/bulk", {"documents": documents}).json()
    assert body["counts"] == {"created": COPY_FROM + 10}
    stored = Document.objects.filter(number__startswith="MR-").order_by("number")
    assert [d.number for d in stored] == [d["number"] for d in documents]
    first = stored[0]
    assert first.created_at is not None and first.close_state == "open" and first.version == 1
    assert first.external_id == "MR-0" and str(first.expected_date) == "2026-03-01"
    assert first.total_amount == Decimal("55.00")
    assert first.company_id == company_of(org.company).pk
    lines = Line.objects.filter(document__number__startswith="MR-")
    assert lines.count() == COPY_FROM + 10 and not lines.filter(on_hold_or_pending=True).exists()
    assert lines.get(document=first, line_no=1).item.code == "BOLT-1"  # type: ignore[union-attr]
    events = [ev(d["number"], f"MR-E-{d['number']}", line_no=1, quantity="1") for d in documents]
    posted = integration.post("/api/events/bulk", {"events": events}).json()
    assert posted["counts"] == {"applied": COPY_FROM + 10}
    stored_events = BusinessEvent.objects.filter(external_id__startswith="MR-E-")
    assert stored_events.count() == COPY_FROM + 10
    assert {e.pk for e in stored_events} == {r["event_id"] for r in posted["results"]}
    assert all(e.received_at is not None and e.status == "applied" for e in stored_events)
    assert lines.get(document=first, line_no=1).fulfilled_qty == Decimal(1)
    again = integration.post("/api/events/bulk", {"events": events}).json()
    assert again["counts"] == {"duplicate": COPY_FROM + 10}
    assert audit_chain_verify().intact


def test_rows_insert_refuses_a_duplicate_as_integrity_error(org: Org) -> None:
    document = make_document(PO, org.dept_a, number="RI-1")
    twins = [
        Document(doc_type=PO, number=f"RI-{i}", company=document.company,
                 org_unit=document.org_unit, document_date=document.document_date)
        for i in range(1, COPY_FROM + 2)
    ]  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(twins)
    assert Document.objects.filter(number__startswith="RI-").count() == 1
