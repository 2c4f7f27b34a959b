"""The messages a batch run writes into its items read in the page language (issue 17): the item
keeps the English text for the API and the CSV, and its msgid and parameters (or both
renderings) for the page, which shows them in Chinese by default and in English on request."""

import pytest
from django.contrib.auth.models import User
from django.utils import translation

from closeout.batches.messages import message_text
from closeout.batches.models import BatchAction, BatchItem, BatchJob, ItemState
from closeout.batches.services import batch_create, batch_preview, batch_start, batch_work
from closeout.closing.services import document_close
from closeout.documents.models import Document, EventKind
from tests.factories import PO, Org, make_document, post
from tests.web.conftest import signed_in
from tests.web.zh_check import problems, raw_codes

pytestmark = pytest.mark.django_db


def _items(job_id: int) -> dict[str, BatchItem]:
    return {item.label.split()[-1]: item for item in BatchItem.objects.filter(job_id=job_id)}


REMARK = "关错了 closed by mistake"


def _batch(
    actor: User, action: str, documents: list[Document], reason: str, dimension: str = ""
) -> BatchJob:
    numbers = [d.number for d in documents]
    return batch_create(
        actor=actor,
        action=action,
        doc_type=PO,
        numbers=numbers,
        reason_code=reason,
        remark=REMARK,
        dimension=dimension,
    )


def _run(actor: User, job: BatchJob) -> None:
    batch_start(actor=actor, job=job)
    batch_work(job.pk)


def test_reopen_batch_refusal_reads_in_chinese_on_the_page(org: Org, supervisor: User) -> None:
    closed = make_document(PO, org.dept_a, ((10, 5),))
    post(closed, EventKind.RECEIPT, 1, 10)
    document_close(actor=supervisor, document=closed, reason_code="completed", remark="x")
    still_open = make_document(PO, org.dept_a, ((10, 5),))
    job = _batch(supervisor, BatchAction.REOPEN, [closed, still_open], "wrong_close")
    _run(supervisor, job)
    refused = _items(job.pk)[still_open.number]
    assert refused.state == ItemState.FAILED
    # The API and the CSV read English, as before.
    assert "cannot" in refused.message and still_open.number in refused.message
    record = refused.params["run_message"]
    zh = message_text(record, "zh-hans")
    assert still_open.number in zh and "采购订单" in zh and "cannot" not in zh
    assert message_text(record, "en") == refused.message

    page = signed_in(supervisor, "zh-hans").get(f"/batches/{job.pk}/").content.decode()
    assert zh in page and refused.message not in page
    assert not problems(page, codes=raw_codes(), data={REMARK})
    english = signed_in(supervisor, "en").get(f"/batches/{job.pk}/").content.decode()
    assert refused.message in english


def test_dimension_batch_results_read_in_chinese(org: Org, supervisor: User) -> None:
    short = make_document(PO, org.dept_a, ((10, 5), (4, 2)))
    post(short, EventKind.RECEIPT, 1, 6)
    closed = make_document(PO, org.dept_a, ((10, 5),))
    post(closed, EventKind.RECEIPT, 1, 10)
    job = _batch(
        supervisor, BatchAction.CLOSE, [short, closed], "short_delivery_accepted", "receiving"
    )
    job = batch_preview(actor=supervisor, job=job)
    # Closed after the preview: the run refuses it with the service's own message.
    document_close(actor=supervisor, document=closed, reason_code="completed", remark="x")
    _run(supervisor, job)
    items = _items(job.pk)
    done, refused = items[short.number], items[closed.number]
    assert done.state == ItemState.DONE and done.message == "receiving: lines 1, 2"
    assert refused.state == ItemState.FAILED and refused.message
    with translation.override("zh-hans"):
        assert message_text(done.params["run_message"]) == "收货关闭：第 1, 2 行"
        refused_zh = message_text(refused.params["run_message"])
    assert closed.number in refused_zh and refused.message != refused_zh

    page = signed_in(supervisor, "zh-hans").get(f"/batches/{job.pk}/").content.decode()
    assert "收货关闭：第 1, 2 行" in page and refused_zh in page
    assert "receiving: lines" not in page and refused.message not in page
    assert not problems(page, codes=raw_codes(), data={REMARK})
