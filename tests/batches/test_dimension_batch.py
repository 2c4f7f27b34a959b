"""A close batch of one close dimension (关闭维度): preview, run, post-verification."""

import pytest
from django.contrib.auth.models import User

from closeout.batches.models import BatchAction
from closeout.batches.services import batch_create, batch_preview, batch_start, batch_work
from closeout.closing.dimensions import closed_dimensions
from closeout.core.errors import InvalidInput
from closeout.documents.models import CloseState, EventKind, Line
from tests.factories import PO, SO, Org, make_document, post

pytestmark = pytest.mark.django_db


def test_batch_closes_receiving_of_every_chosen_order(org: Org, supervisor: User) -> None:
    short = make_document(PO, org.dept_a, ((10, 5), (4, 2)))
    post(short, EventKind.RECEIPT, 1, 6)
    untouched = make_document(PO, org.dept_a, ((10, 5),))
    closed = make_document(PO, org.dept_a, ((10, 5),))
    post(closed, EventKind.RECEIPT, 1, 10)
    from closeout.closing.services import document_close

    document_close(actor=supervisor, document=closed, reason_code="completed", remark="x")
    job = batch_create(
        actor=supervisor,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[short.number, untouched.number, closed.number],
        reason_code="short_delivery_accepted",
        remark="供应商停产 supplier stopped",
        dimension="receiving",
    )
    job = batch_preview(actor=supervisor, job=job)
    assert job.predicted == {"would_close_dim": 2, "skipped": 1}
    batch_start(actor=supervisor, job=job)
    batch_work(job.pk)
    job.refresh_from_db()
    assert (job.succeeded, job.failed) == (2, 1)
    lines = Line.objects.filter(document__in=[short, untouched])
    closed_rows = closed_dimensions([line.pk for line in lines])
    assert all(closed_rows.get(line.pk) == {"receiving"} for line in lines)
    assert all(line.close_state == CloseState.OPEN for line in lines)


def test_dimension_only_for_close_batches_of_a_type_that_has_it(org: Org, supervisor: User) -> None:
    document = make_document(SO, org.dept_b, ((10, 5),))
    with pytest.raises(InvalidInput, match="dimension"):
        batch_create(
            actor=supervisor,
            action=BatchAction.CLOSE,
            doc_type=SO,
            numbers=[document.number],
            reason_code="completed",
            dimension="receiving",
        )
    with pytest.raises(InvalidInput, match="dimension"):
        batch_create(
            actor=supervisor,
            action=BatchAction.REOPEN,
            doc_type=SO,
            numbers=[document.number],
            reason_code="wrong_close",
            dimension="shipping",
        )
