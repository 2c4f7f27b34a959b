"""Issue 17 §2, §4, §5, §8 through the services and the test client: service errors in both
languages, the close path as a predicate, messages after actions, batch runs that refuse
documents, and the remark limit."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone, translation

from closeout.batches.models import BatchJob, BatchState, ItemState
from closeout.batches.services import batch_create, batch_preview, batch_start
from closeout.closing.selectors import close_checklist_for
from closeout.closing.services import REMARK_MAX, close_path, document_close
from closeout.core.errors import InvalidInput
from closeout.documents.models import CloseState
from tests.approvals.conftest import make_route, short_po
from tests.factories import PO, Org, post, ready_document
from tests.web.conftest import signed_in


def test_a_service_error_reads_in_english_and_chinese(org: Org, operator: User) -> None:
    document = ready_document(PO, org.dept_a)
    future = timezone.localdate() + timedelta(days=3)
    with pytest.raises(InvalidInput) as refused:
        document_close(
            actor=operator, document=document, reason_code="completed", close_date=future
        )
    error = refused.value
    assert error.message == f"close date {future} is in the future; choose today or an earlier day"
    assert error.details["message_zh"].startswith(f"结案日期 {future} 在未来")
    with translation.override("zh-hans"):
        assert "在未来" in error.text()
    with translation.override("en"):
        assert "in the future" in error.text()


def test_the_close_page_shows_the_refusal_in_chinese(org: Org, operator: User) -> None:
    document = ready_document(PO, org.dept_a)
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    page = signed_in(operator, "zh-hans").post(
        f"/documents/{document.pk}/close/",
        {"reason": "completed", "close_date": future, "submit_as": "direct"},
    )
    html = page.content.decode()
    assert "在未来" in html and "in the future" not in html


def test_close_path_is_the_predicate_the_close_service_uses(org: Org) -> None:
    ready = ready_document(PO, org.dept_a)
    short = short_po(org.dept_a)
    make_route("例外 exception", condition="exception")
    assert not close_path(ready, close_checklist_for(ready), [1]).needs_approval
    path = close_path(short, close_checklist_for(short), [1])
    assert path.needs_approval and path.route == "例外 exception"


def test_a_close_shows_a_success_message(org: Org, operator: User) -> None:
    document = ready_document(PO, org.dept_a)
    client = signed_in(operator, "zh-hans")
    response = client.post(
        f"/documents/{document.pk}/close/",
        {
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
            "submit_as": "direct",
        },
        follow=True,
    )
    html = response.content.decode()
    assert 'class="messages"' in html and "已结案" in html and document.number in html


def test_a_remark_longer_than_the_limit_is_refused_by_service_and_form(
    org: Org, operator: User
) -> None:
    document = ready_document(PO, org.dept_a)
    with pytest.raises(InvalidInput) as refused:
        document_close(
            actor=operator,
            document=document,
            reason_code="completed",
            remark="x" * (REMARK_MAX + 1),
        )
    assert refused.value.details == {
        "field": "remark",
        "max_length": REMARK_MAX,
        "message_zh": f"备注共 {REMARK_MAX + 1} 个字符；最多允许 {REMARK_MAX} 个",
    }
    page = signed_in(operator, "zh-hans").post(
        f"/documents/{document.pk}/close/",
        {
            "reason": "completed",
            "remark": "x" * (REMARK_MAX + 1),
            "close_date": timezone.localdate().isoformat(),
            "submit_as": "direct",
        },
    )
    assert 'id="remark-error"' in page.content.decode()
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN


def _batch(org: Org, operator: User) -> tuple[BatchJob, list[int]]:
    ready = [ready_document(PO, org.dept_a) for _ in range(2)]
    blocked = ready_document(PO, org.dept_a)
    post(blocked, "receipt", quantity=1, pending=True)
    job = batch_create(
        actor=operator,
        action="close",
        doc_type=PO,
        numbers=[d.number for d in [*ready, blocked]],
        reason_code="completed",
    )
    return batch_preview(actor=operator, job=job), [blocked.pk]


def test_a_batch_whose_preview_refuses_documents_does_not_start_unless_told_to_skip(
    org: Org, operator: User
) -> None:
    job, (blocked,) = _batch(org, operator)
    assert job.predicted == {"would_close": 2, "refused": 1}
    with pytest.raises(InvalidInput, match="the preview refuses 1 document"):
        batch_start(actor=operator, job=job, when_refused="refuse")
    job.refresh_from_db()
    assert job.state == BatchState.PREVIEWED
    job = batch_start(actor=operator, job=job, when_refused="skip")
    item = job.items.get(document_id=blocked)
    assert item.state == ItemState.SKIPPED and item.message
    assert job.skipped == 1


def test_the_batch_page_asks_before_running_only_the_closable_ones(
    org: Org, operator: User
) -> None:
    job, _ = _batch(org, operator)
    client = signed_in(operator, "zh-hans")
    html = client.get(f"/batches/{job.pk}/").content.decode()
    assert 'id="batch-refused"' in html and 'id="only-closable"' in html
    response = client.post(f"/batches/{job.pk}/", {"op": "start"})
    assert "会被拒绝" in response.content.decode()
    job.refresh_from_db()
    assert job.state == BatchState.PREVIEWED
