"""Post-close verification (结案后校验, S16): after a real batch every check passes; tampering
behind the application's back is found and names the document."""

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from closeout.audit.models import AuditAction, AuditEvent
from closeout.batches.models import BatchAction, BatchJob, BatchState
from closeout.batches.services import batch_create, batch_start
from closeout.closing.selectors import open_commitments_by_item
from closeout.core.errors import NotFound, PermissionDenied
from closeout.documents.models import CloseState, Document, EventKind, Line
from closeout.reports.models import PostCloseVerification
from closeout.reports.verification import batch_verify
from tests.audit.test_chain import tampering
from tests.factories import PO, Org, an_item, complete, make_document, post, user_with_role
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_tasks(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""


@pytest.fixture
def run_inline(django_capture_on_commit_callbacks: Any) -> Iterator[Callable[..., Any]]:
    def run(fn: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    yield run


@pytest.fixture
def auditor(org: Org) -> User:
    return user_with_role("verifier", "auditor", org.company)


@pytest.fixture
def closed_batch(
    org: Org, operator: User, run_inline: Callable[..., Any]
) -> tuple[BatchJob, dict[str, Document]]:
    """A batch closing two complete orders and one short one (accepted with a remark: it
    releases 6 of item A), refusing one blocked by a line on hold."""
    item_a, item_b = an_item("A"), an_item("B")
    docs = {
        "ready1": complete(make_document(PO, org.dept_a, ((10, 5),), item=item_a)),
        "ready2": complete(make_document(PO, org.dept_a, ((4, 2), (3, 1)), item=item_b)),
        "short": make_document(PO, org.dept_a, ((10, 5),), item=item_a),
        "other": make_document(PO, org.dept_a, ((7, 5),), item=item_a),
    }
    post(docs["short"], EventKind.RECEIPT, 1, 4)
    post(docs["short"], EventKind.INVOICE, 1, 4, 20)
    post(docs["short"], EventKind.PAYMENT, 1, 0, 20)
    post(docs["other"], EventKind.RECEIPT, 1, 1, pending=True)  # blocking: pending event
    job = batch_create(
        actor=operator,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in docs.values()],
        reason_code="completed",
        remark="supplier cannot deliver the rest",
    )
    job = run_inline(lambda: batch_start(actor=operator, job=job, workers=1))
    job.refresh_from_db()
    assert job.state == BatchState.DONE
    return job, docs


def test_runs_when_a_batch_finishes_and_passes(
    closed_batch: tuple[BatchJob, dict[str, Document]],
) -> None:
    job, docs = closed_batch
    docs["short"].refresh_from_db()
    assert docs["short"].close_state == CloseState.CLOSED
    assert (job.succeeded, job.failed) == (3, 1)
    verification = PostCloseVerification.objects.get(job=job)
    assert verification.passed, verification.problems
    assert verification.run_by is None
    assert verification.documents_checked == 4
    assert verification.lines_checked == 4  # the closed lines of the three closed orders
    assert verification.items_checked == 2
    assert verification.chain_intact
    event = AuditEvent.objects.get(action=AuditAction.POST_CLOSE_VERIFIED)
    assert event.object_id == str(job.pk) and event.data["passed"] is True


def test_commitments_reflect_the_released_quantities(
    closed_batch: tuple[BatchJob, dict[str, Document]],
) -> None:
    _job, docs = closed_batch
    item_a = docs["short"].lines.get().item
    assert item_a is not None
    # The short order released 6; the untouched order still has 7 on order.
    assert docs["short"].lines.get().released_qty == Decimal(6)
    assert open_commitments_by_item([item_a.pk])[item_a.pk].on_order == Decimal(7)


def test_a_line_reopened_behind_its_back_is_named(
    closed_batch: tuple[BatchJob, dict[str, Document]], auditor: User
) -> None:
    job, docs = closed_batch
    Line.objects.filter(document=docs["short"]).update(close_state=CloseState.OPEN)
    verification = batch_verify(job_id=job.pk, actor=auditor)
    assert not verification.passed
    named = {(p["check"], p["document"]) for p in verification.problems}
    assert ("state", docs["short"].number) in named
    assert ("commitments", f"{PO} {docs['short'].number}") in named
    item_problem = [p for p in verification.problems if p["document"].startswith("item ")]
    assert item_problem and "on_order" in item_problem[0]["message"]
    assert verification.run_by == auditor
    assert not AuditEvent.objects.get(
        action=AuditAction.POST_CLOSE_VERIFIED, data__passed=False
    ).data["passed"]


def _behind_the_trigger(sql: str, params: list[Any]) -> None:
    """Change audit rows as an intruder would: the append-only triggers are switched off
    inside this test's transaction only (rolled back with it)."""
    with tampering(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_deleted_close_event_is_found(
    closed_batch: tuple[BatchJob, dict[str, Document]], auditor: User
) -> None:
    job, docs = closed_batch
    _behind_the_trigger(
        "DELETE FROM audit_auditevent WHERE action = %s AND object_id = %s",
        [int(AuditAction.DOCUMENT_CLOSED), str(docs["ready2"].pk)],
    )
    verification = batch_verify(job_id=job.pk, actor=auditor)
    assert not verification.passed and not verification.chain_intact
    messages = {(p["check"], p["document"]): p["message"] for p in verification.problems}
    assert "close audit event" in messages[("audit", docs["ready2"].number)]
    assert ("audit", "audit chain") in messages


def test_a_refused_document_closed_after_all_is_named(
    closed_batch: tuple[BatchJob, dict[str, Document]], auditor: User
) -> None:
    """A refused item must be unchanged by the batch: a close recorded under the batch's name
    for it is a contradiction."""
    job, docs = closed_batch
    event = AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED).first()
    assert event is not None
    _behind_the_trigger(
        "UPDATE audit_auditevent SET object_id = %s WHERE id = %s",
        [str(docs["other"].pk), event.pk],
    )
    verification = batch_verify(job_id=job.pk, actor=auditor)
    assert any(
        p["document"] == docs["other"].number and "this batch closed it" in p["message"]
        for p in verification.problems
    )


def test_needs_report_view_and_an_existing_batch(
    closed_batch: tuple[BatchJob, dict[str, Document]], operator: User, auditor: User
) -> None:
    job, _docs = closed_batch
    with pytest.raises(PermissionDenied, match=r"report\.view"):
        batch_verify(job_id=job.pk, actor=operator)
    with pytest.raises(NotFound, match="no batch #999999"):
        batch_verify(job_id=999999, actor=auditor)


def test_command_line(closed_batch: tuple[BatchJob, dict[str, Document]], auditor: User) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    job, docs = closed_batch
    out = StringIO()
    call_command("diagnose", "verify-batch", str(job.pk), "--as", auditor.username, stdout=out)
    assert f"of batch #{job.pk}: passed" in out.getvalue()
    Line.objects.filter(document=docs["ready1"]).update(close_state=CloseState.OPEN)
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("diagnose", "verify-batch", str(job.pk), stdout=out)
    assert caught.value.returncode == 2
    assert docs["ready1"].number in out.getvalue()


def test_the_verification_page_names_the_problems_in_the_page_language(
    closed_batch: tuple[BatchJob, dict[str, Document]], auditor: User
) -> None:
    """What the verification found reads in Chinese on the Chinese page (no state, commitment
    or type codes), and in English on the English one, as the API keeps it."""
    job, docs = closed_batch
    Line.objects.filter(document=docs["short"]).update(close_state=CloseState.OPEN)
    _behind_the_trigger(
        "DELETE FROM audit_auditevent WHERE action = %s AND object_id = %s",
        [int(AuditAction.DOCUMENT_CLOSED), str(docs["ready2"].pk)],
    )
    batch_verify(job_id=job.pk, actor=auditor)
    url = f"/batches/{job.pk}/verification/"
    page = signed_in(auditor, "zh-hans").get(url).content.decode()
    number = docs["short"].number
    assert f"采购订单 {number}" in page
    assert "该行为未结案；已释放" in page
    assert "在途：占用量减少了" in page
    assert "审计链" in page and "已结案，但没有本批次的结案审计事件" in page
    for code in ("on_order", "purchase_order", "fell by", "audit chain"):
        assert code not in page, code
    english = signed_in(auditor, "en").get(url).content.decode()
    assert f"{PO} {number}" in english and "on_order: commitments fell by" in english
