"""The work queue's verdict filters select exactly the open documents whose checklist has that
verdict, under every policy (the filters are built from the same rule definitions)."""

import pytest
from django.contrib.auth.models import User

from closeout.closing.queue import QueueFilter, document_queue
from closeout.closing.selectors import close_checklist_for
from closeout.closing.services import document_hold
from closeout.documents.models import CloseState, Document, EventKind
from tests.factories import PO, Org, make_document, post, ready_document, set_policy

VERDICTS = ("ready", "warning", "exception", "blocked")


@pytest.mark.django_db
def test_verdict_filters_agree_with_the_checklists(org: Org, operator: User) -> None:
    # Department B makes a short delivery blocking and an unpaid invoice a mere warning.
    set_policy(
        PO,
        org.dept_b,
        rule_settings={"received": {"severity": "blocking"}, "paid": {"severity": "warning"}},
    )
    for unit in (org.dept_a, org.dept_b):
        ready_document(PO, unit)
        make_document(PO, unit, ((10, 5),))  # nothing received
        unpaid = make_document(PO, unit, ((10, 5),))
        post(unpaid, EventKind.RECEIPT, 1, 10)
        post(unpaid, EventKind.INVOICE, 1, 10, 50)
        held = ready_document(PO, unit, ((10, 5), (4, 2)))
        document_hold(actor=operator, document=held, reason="dispute", line_nos=[2])
        pending = ready_document(PO, unit)
        post(pending, EventKind.RECEIPT, 1, 1, pending=True)
    expected: dict[str, set[int]] = {v: set() for v in VERDICTS}
    for document in Document.objects.filter(doc_type=PO, close_state=CloseState.OPEN):
        expected[close_checklist_for(document).verdict].add(document.pk)
    assert all(expected[v] for v in ("ready", "exception", "blocked", "warning"))
    for verdict in VERDICTS:
        found = set(
            document_queue(QueueFilter(doc_type=PO, verdict=verdict)).values_list("pk", flat=True)
        )
        assert found == expected[verdict], verdict
