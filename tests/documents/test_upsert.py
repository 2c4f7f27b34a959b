"""Document upsert from an ERP: create, update an open document, and the lock (S11) that
refuses any change to a closed one, naming it and saying it must be reopened first."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.services import document_close, document_reopen
from closeout.core.errors import DocumentLocked, InvalidInput
from closeout.documents.models import Document, Line
from closeout.documents.services import LineInput, document_upsert
from tests.factories import PO, Org, actions_since, audit_head, make_document, ready_document

pytestmark = pytest.mark.django_db

A = AuditAction


def upsert(doc: Document, lines: list[LineInput]) -> Document:
    return document_upsert(
        actor=None,
        doc_type=doc.doc_type,
        number=doc.number,
        org_unit=doc.org_unit,
        document_date=doc.document_date,
        lines=lines,
    )


def test_create_and_update_an_open_document(org: Org) -> None:
    before = audit_head()
    doc = make_document(PO, org.dept_a, [(10, 2)], exchange_rate=Decimal("7.1"))
    assert (doc.total_amount, doc.total_amount_company) == (20, Decimal("142.00"))
    updated = upsert(
        doc, [LineInput(1, Decimal(12), Decimal(2)), LineInput(2, Decimal(1), Decimal(5))]
    )
    assert updated.total_amount == 29 and updated.version == doc.version + 1
    assert list(Line.objects.filter(document=doc).values_list("line_no", "planned_qty")) == [
        (1, 12),
        (2, 1),
    ]
    assert actions_since(before) == [A.DOCUMENT_CREATED, A.DOCUMENT_UPDATED]
    same = upsert(
        updated, [LineInput(1, Decimal(12), Decimal(2)), LineInput(2, Decimal(1), Decimal(5))]
    )
    assert same.version == updated.version  # nothing changed: no new version, no audit event
    assert actions_since(before) == [A.DOCUMENT_CREATED, A.DOCUMENT_UPDATED]


def test_upsert_of_a_closed_document_is_refused_and_recorded(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(10, 5)])
    document_close(actor=operator, document=doc, reason_code="completed")
    before = audit_head()
    with pytest.raises(DocumentLocked) as refused:
        upsert(doc, [LineInput(1, Decimal(99), Decimal(5))])
    assert doc.number in refused.value.message and "reopen" in refused.value.message
    assert refused.value.details == {"number": doc.number, "doc_type": PO}
    assert Line.objects.get(document=doc).planned_qty == 10
    assert actions_since(before) == [A.DOCUMENT_CHANGE_REFUSED]
    event = AuditEvent.objects.get(seq=before + 1)
    assert event.object_id == str(doc.pk) and event.data == {"close_state": "closed"}


def test_closed_line_of_an_open_document_cannot_change(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a, [(10, 5), (10, 5)])
    document_close(actor=operator, document=doc, reason_code="completed", line_nos=[1])
    with pytest.raises(DocumentLocked, match=r"line 1 is closed.*reopened"):
        upsert(doc, [LineInput(1, Decimal(11), Decimal(5)), LineInput(2, Decimal(10), Decimal(5))])
    # An unchanged closed line next to a changed open one is fine.
    upsert(doc, [LineInput(1, Decimal(10), Decimal(5)), LineInput(2, Decimal(12), Decimal(5))])
    assert Line.objects.get(document=doc, line_no=2).planned_qty == 12


def test_reopened_document_can_change_again(org: Org, operator: User, supervisor: User) -> None:
    doc = ready_document(PO, org.dept_a, [(10, 5)])
    document_close(actor=operator, document=doc, reason_code="completed")
    document_reopen(actor=supervisor, document=doc, reason_code="customer_reorder")
    upsert(doc, [LineInput(1, Decimal(15), Decimal(5))])
    assert Line.objects.get(document=doc).planned_qty == 15


def test_bad_document_input(org: Org) -> None:
    today = timezone.localdate()
    base = {"actor": None, "org_unit": org.dept_a, "document_date": today}
    with pytest.raises(InvalidInput, match="unknown document type 'invoice'"):
        document_upsert(doc_type="invoice", number="X", lines=[], **base)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="number is empty"):
        document_upsert(doc_type=PO, number=" ", lines=[], **base)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="line 1 appears twice"):
        document_upsert(
            doc_type=PO,
            number="PO-DUP",
            lines=[LineInput(1, Decimal(1), Decimal(1)), LineInput(1, Decimal(2), Decimal(1))],
            **base,  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidInput, match="must not be negative"):
        document_upsert(
            doc_type=PO,
            number="PO-NEG",
            lines=[LineInput(1, Decimal(-1), Decimal(1))],
            **base,  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidInput, match="line numbers start at 1"):
        document_upsert(
            doc_type=PO,
            number="PO-ZERO",
            lines=[LineInput(0, Decimal(1), Decimal(1))],
            **base,  # type: ignore[arg-type]
        )
    assert not Document.objects.filter(number__startswith="PO-").exists()
