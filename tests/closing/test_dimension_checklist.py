"""The checklist understands a line closed for receiving (issue 16 §1): its shortfall was
accepted by the receiving close, so "received within tolerance" passes for it, and the measured
values say so in both languages."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import translation

from closeout.closing.selectors import close_checklist_for, verdicts_for
from closeout.closing.services import document_close
from closeout.documents.models import CloseState, Document, EventKind
from closeout.web.templatetags.closeout_labels import measures
from tests.closing.test_dimensions import _close_receiving
from tests.factories import PO, SO, Org, an_item, lenient, make_document, post

pytestmark = pytest.mark.django_db


def _short(org: Org, doc_type: str = PO) -> Document:
    """Line 1: 6 of 10 fulfilled, invoiced and settled; line 2 complete."""
    document = make_document(doc_type, org.team_a1, ((10, 5), (4, 3)), item=an_item("CHK-1"))
    fulfil = EventKind.RECEIPT if doc_type == PO else EventKind.SHIPMENT
    for line_no, qty, amount in ((1, 6, 30), (2, 4, 12)):
        post(document, fulfil, line_no, qty)
        post(document, EventKind.INVOICE, line_no, qty, amount)
        post(document, EventKind.PAYMENT, line_no, 0, amount)
    return document


def _check(document: Document, code: str) -> object:
    return next(c for c in close_checklist_for(document).checks if c.rule.code == code)


def test_a_receiving_closed_shortfall_does_not_block_the_close(org: Org, supervisor: User) -> None:
    lenient(PO)
    document = _short(org)
    before = _check(document, "received")
    assert not before.passed and before.failing_lines == [1]  # type: ignore[attr-defined]
    assert verdicts_for([document.pk], doc_type=PO)[document.pk].codes("exception")

    _close_receiving(supervisor, document)
    check = _check(document, "received")
    assert check.passed and check.failing_lines == []  # type: ignore[attr-defined]
    assert check.measured["short_accepted_receiving"] == Decimal(4)  # type: ignore[attr-defined]
    assert check.line_values[1]["short_accepted_receiving"] == Decimal(4)  # type: ignore[attr-defined]
    assert check.line_values[2]["short_accepted_receiving"] == 0  # type: ignore[attr-defined]
    assert close_checklist_for(document).verdict == "ready"
    assert not verdicts_for([document.pk], doc_type=PO)[document.pk].codes("exception")
    with translation.override("zh-hans"):
        assert "收货关闭已接受的短交 = 4" in measures(check.measured)  # type: ignore[attr-defined]
    with translation.override("en"):
        text = measures(check.measured)  # type: ignore[attr-defined]
        assert "short accepted by closing for receiving = 4" in text

    # No remark needed: nothing fails any more.
    result = document_close(actor=supervisor, document=document, reason_code="completed")
    assert result.header_closed
    document.refresh_from_db()
    assert document.close_state == CloseState.CLOSED


def test_an_open_shortfall_still_fails_and_so_uses_shipping(org: Org, supervisor: User) -> None:
    lenient(SO)
    document = _short(org, SO)
    assert not _check(document, "shipped").passed  # type: ignore[attr-defined]
    _close_receiving(supervisor, document, "shipping")
    check = _check(document, "shipped")
    assert check.passed  # type: ignore[attr-defined]
    assert check.measured["short_accepted_shipping"] == Decimal(4)  # type: ignore[attr-defined]
