"""No document index holds close_state (documents 0011, so closes are heap-only updates): the
generated `awaiting_decision` flag stands for the rare waiting states, and the queue's filter on
those states still returns exactly the documents in them."""

import pytest

from closeout.closing.queue import QueueFilter, document_queue
from closeout.documents.models import AWAITING_DECISION, CloseState, Document
from tests.factories import PO, Org, make_document


@pytest.mark.django_db
def test_flag_and_queue_filters_follow_the_state(org: Org) -> None:
    by_state = {}
    for state in CloseState.values:
        document = make_document(PO, org.dept_a, ((10, 5),))
        Document.objects.filter(pk=document.pk).update(close_state=state)
        by_state[state] = document.pk
    flags = dict(Document.objects.values_list("close_state", "awaiting_decision"))
    assert flags == {state: state in AWAITING_DECISION for state in CloseState.values}
    for states in (
        [CloseState.CLOSE_PENDING],
        [CloseState.ON_HOLD, CloseState.REOPEN_PENDING],
        [CloseState.OPEN, CloseState.ON_HOLD],
        [CloseState.CLOSED],
    ):
        found = set(
            document_queue(QueueFilter(doc_type=PO, close_states=tuple(states))).values_list(
                "pk", flat=True
            )
        )
        assert found == {by_state[s] for s in states}
