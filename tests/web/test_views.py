"""The workbench pages through Django's test client: permissions, errors in words, query counts,
and that each page calls the real services (the database changes are checked)."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from closeout.access.models import Grant
from closeout.approvals.models import CloseRequest, RequestState
from closeout.audit.models import AuditAction, AuditEvent
from closeout.batches.models import BatchJob, BatchState
from closeout.closing.models import SavedQueueFilter
from closeout.closing.services import document_close
from closeout.documents.models import CloseState, Document, EventKind, EventStatus
from closeout.notifications.models import Notification
from closeout.web import views_queue
from tests.approvals.conftest import make_route, short_po
from tests.factories import PO, Org, lenient, make_document, post, ready_document, user_with_role
from tests.web.conftest import signed_in


def text(response: Any) -> str:
    return str(response.content.decode())


# --- login, header, language -----------------------------------------------------------------


def test_pages_need_a_login(db: None) -> None:
    response = Client().get("/queue/purchase_order/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_then_header_shows_name_roles_organisation_and_unread(operator: User) -> None:
    Notification.objects.create(user=operator, kind="x", title="hello", body="b")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/login/", {"username": "op", "password": "x-test-only"})
    assert response.status_code == 302
    page = text(client.get("/queue/purchase_order/"))
    assert "<strong>op</strong>" in page
    assert "Operator" in page and "HQ" in page
    assert 'id="unread-badge" aria-label="unread">1</span>' in page


def test_failed_logins_lock_the_user_out_even_with_the_right_password(operator: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    for attempt in range(1, 6):
        response = client.post("/login/", {"username": "op", "password": "wrong"})
        assert response.status_code == 200
        # The fifth failure starts the lockout and says so.
        assert ("Too many failed" in text(response)) == (attempt == 5)
    response = client.post("/login/", {"username": "op", "password": "x-test-only"})
    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in text(response)
    assert "_auth_user_id" not in client.session


def test_failed_logins_from_one_address_lock_that_address_only_at_its_looser_limit(
    operator: User, settings: Settings
) -> None:
    settings.CLOSEOUT_LOGIN_LIMIT_ADDRESS = 8
    client = Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="10.0.0.9")
    for n in range(7):
        client.post("/login/", {"username": f"guess{n}", "password": "wrong"})
    # Seven misses over seven names: under every limit, so op still signs in from there.
    response = client.post("/login/", {"username": "op", "password": "x-test-only"})
    assert response.status_code == 302
    client = Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="10.0.0.9")
    client.post("/login/", {"username": "guess-last", "password": "wrong"})
    response = client.post("/login/", {"username": "op", "password": "x-test-only"})
    assert "Too many failed sign-in attempts" in text(response)
    other = Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="10.0.0.10")
    assert other.post("/login/", {"username": "op", "password": "x-test-only"}).status_code == 302


def test_chinese_is_the_default_and_english_is_one_switch_away(operator: User) -> None:
    client = Client()
    client.force_login(operator)
    assert "待结案" in text(client.get("/queue/purchase_order/"))
    response = client.post(
        "/i18n/setlang/", {"language": "en", "next": "/queue/purchase_order/"}, follow=True
    )
    page = text(response)
    assert "To close" in page and "待结案" not in page


# --- work queue ------------------------------------------------------------------------------


def test_queue_lists_only_documents_in_the_users_scope_with_tab_counts(
    org: Org, outsider: User, operator: User
) -> None:
    mine = make_document(PO, org.dept_b)
    theirs = make_document(PO, org.dept_a)
    page = text(signed_in(outsider).get("/queue/purchase_order/"))
    assert mine.number in page and theirs.number not in page
    assert 'id="tab-purchase_order"' in page
    assert '<span class="count">1</span>' in page
    everything = text(signed_in(operator).get("/queue/purchase_order/"))
    assert mine.number in everything and theirs.number in everything


def test_queue_filters_by_number_verdict_and_quarantine(org: Org, operator: User) -> None:
    ready = ready_document(PO, org.dept_a)
    short = short_po(org.dept_a)
    client = signed_in(operator)
    page = text(client.get("/queue/purchase_order/", {"number": ready.number}))
    assert ready.number in page and short.number not in page
    page = text(client.get("/queue/purchase_order/", {"verdict": "exception"}))
    assert short.number in page and ready.number not in page
    page = text(client.get("/queue/purchase_order/", {"verdict": "ready"}))
    assert ready.number in page and short.number not in page
    assert "ready to close" in page
    page = text(client.get("/queue/purchase_order/", {"quarantined": "yes"}))
    assert ready.number not in page and short.number not in page


def test_queue_shows_filter_errors_next_to_the_field(org: Org, operator: User) -> None:
    client = signed_in(operator)
    response = client.get(
        "/queue/purchase_order/", {"date_from": "2024-05-01", "date_to": "2024-04-01"}
    )
    assert "The end date is before the start date." in text(response)
    response = client.get("/queue/purchase_order/", {"org_unit": "NOPE"})
    assert "unknown organisation unit &#x27;NOPE&#x27;" in text(response)
    assert client.get("/queue/no_such_type/").status_code == 404


def test_queue_pages_with_a_keyset_and_sorts(
    org: Org, operator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views_queue, "PAGE_SIZE", 2)
    docs = [make_document(PO, org.dept_a, number=f"K-{n}") for n in (3, 1, 4, 2, 5)]
    client = signed_in(operator)
    first = client.get("/queue/purchase_order/", {"sort": "number"})
    page = text(first)
    assert page.index("K-1") < page.index("K-2") and "K-3" not in page
    assert 'id="next-page"' in page and 'id="prev-page"' not in page
    assert 'aria-sort="ascending"' in page and "▲" in page
    assert first.context["total"].value == 5
    after = first.context["next_cursor"]
    second = client.get("/queue/purchase_order/", {"sort": "number", "after": after})
    assert "K-3" in text(second) and "K-4" in text(second) and "K-1" not in text(second)
    # Back from the second page: the first page again, with no previous page before it.
    back = client.get(
        "/queue/purchase_order/", {"sort": "number", "before": second.context["prev_cursor"]}
    )
    assert [d.number for d, _ in back.context["rows"]] == ["K-1", "K-2"]
    assert back.context["prev_cursor"] == ""
    # The sort links carry one sort, never the one already in the address.
    assert "sort=number&amp;sort" not in text(second) and "sort=-number" in text(second)
    newest = text(client.get("/queue/purchase_order/"))
    assert docs[-1].number in newest and docs[0].number not in newest


def test_queue_query_count_does_not_grow_with_the_page(
    org: Org, operator: User, django_assert_max_num_queries: Any
) -> None:
    for _ in range(3):
        ready_document(PO, org.dept_a)
    client = signed_in(operator)
    with django_assert_max_num_queries(20):
        small = client.get("/queue/purchase_order/", {"verdict": "ready"})
    for _ in range(12):
        short_po(org.dept_a)
    with django_assert_max_num_queries(20):
        big = client.get("/queue/purchase_order/")
    assert len(small.context["rows"]) == 3 and len(big.context["rows"]) == 15


# --- document detail ---------------------------------------------------------------------------


def test_document_detail_shows_lines_checklist_events_and_history(org: Org, operator: User) -> None:
    document = short_po(org.dept_a)
    page = text(signed_in(operator).get(f"/documents/{document.pk}/"))
    assert document.number in page
    assert '<progress class="bar" value="40" max="100">' in page  # 400 of 1000 received
    assert "received" in page and "FAIL" in page and "PASS" in page
    assert "<td>receipt</td>" in page
    assert "<td>document created</td>" in page
    assert 'id="close-button"' in page


def test_document_detail_shows_quarantined_events(org: Org, operator: User) -> None:
    document = ready_document(PO, org.dept_a)
    document_close(actor=operator, document=document, reason_code="completed")
    post(document, EventKind.RECEIPT, 1, 1)
    assert document.events.filter(status=EventStatus.QUARANTINED).exists()
    page = text(signed_in(operator).get(f"/documents/{document.pk}/"))
    assert 'class="quarantined"' in page
    assert 'id="reopen-button"' in page


def test_document_outside_the_scope_is_not_found_like_a_missing_one(
    org: Org, outsider: User
) -> None:
    """Issue 12: a 403 naming the department told that the document exists, and where."""
    document = make_document(PO, org.dept_a)
    client = signed_in(outsider)
    response = client.get(f"/documents/{document.pk}/")
    missing = client.get(f"/documents/{document.pk + 1000}/")
    assert response.status_code == missing.status_code == 404

    # The same words (the page's hidden fields carry its own address and a fresh CSRF mask).
    def words(page: Any) -> str:
        return re.sub(r"(value|hx-headers)=('[^']*'|\"[^\"]*\")", "", text(page))

    assert words(response) == words(missing) and "D-A" not in text(response)


# --- close dialog ------------------------------------------------------------------------------


def test_close_dialog_offers_reasons_today_and_a_preview(org: Org, operator: User) -> None:
    document = short_po(org.dept_a)
    page = text(signed_in(operator).get(f"/documents/{document.pk}/close/"))
    assert 'value="supplier_cannot_deliver"' in page
    assert 'value="auto_rules_met"' not in page  # system reasons are not offered
    assert timezone.localdate().isoformat() in page
    assert 'id="preview-total">60000.00' in page  # 600 not received × 100


def test_close_whole_document_directly(org: Org, operator: User, ready_po: Document) -> None:
    response = signed_in(operator).post(
        f"/documents/{ready_po.pk}/close/",
        {
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
            "submit_as": "direct",
        },
    )
    assert response.status_code == 302
    ready_po.refresh_from_db()
    assert ready_po.close_state == CloseState.CLOSED
    history = text(signed_in(operator).get(f"/documents/{ready_po.pk}/"))
    assert "completed" in history


def test_close_one_line(org: Org, operator: User, ready_po: Document) -> None:
    signed_in(operator).post(
        f"/documents/{ready_po.pk}/close/",
        {
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
            "lines": ["1"],
            "submit_as": "direct",
        },
    )
    states = dict(ready_po.lines.values_list("line_no", "close_state"))
    assert states == {1: CloseState.CLOSED, 2: CloseState.OPEN}
    assert AuditEvent.objects.filter(
        object_id=str(ready_po.pk), action=AuditAction.LINES_CLOSED
    ).exists()


def test_close_errors_are_shown_next_to_their_field(org: Org, operator: User) -> None:
    document = short_po(org.dept_a)
    client = signed_in(operator)
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    response = client.post(
        f"/documents/{document.pk}/close/",
        {"reason": "supplier_cannot_deliver", "close_date": future, "submit_as": "direct"},
    )
    assert 'id="close-date-error"' in text(response) and "in the future" in text(response)
    response = client.post(
        f"/documents/{document.pk}/close/",
        {
            "reason": "supplier_cannot_deliver",
            "close_date": timezone.localdate().isoformat(),
            "submit_as": "direct",
        },
    )
    page = text(response)
    assert 'id="remark-error"' in page and "a remark explaining the exception is required" in page
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN


def test_exception_close_that_needs_approval_becomes_a_request(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("例外 exception", condition="exception")
    document = short_po(org.dept_a)
    client = signed_in(operator)
    form = {
        "reason": "supplier_cannot_deliver",
        "remark": "supplier went bankrupt",
        "close_date": timezone.localdate().isoformat(),
    }
    response = client.post(f"/documents/{document.pk}/close/", {**form, "submit_as": "direct"})
    assert 'id="needs-approval"' in text(response)
    response = client.post(f"/documents/{document.pk}/close/", {**form, "submit_as": "request"})
    request = CloseRequest.objects.get(document=document)
    assert response["Location"] == f"/requests/{request.pk}/"
    document.refresh_from_db()
    assert document.close_state == CloseState.CLOSE_PENDING
    # The supervisor sees it in the inbox and approves it from the request page.
    boss = signed_in(supervisor)
    assert f"#{request.pk}" in text(boss.get("/inbox/"))
    page = text(boss.get(f"/requests/{request.pk}/"))
    assert 'id="comparison"' in page and 'id="approve"' in page
    boss.post(f"/requests/{request.pk}/", {"decision": "approve", "requests": [request.pk]})
    request.refresh_from_db()
    document.refresh_from_db()
    assert request.state == RequestState.EXECUTED and document.close_state == CloseState.CLOSED


def test_close_without_permission_says_which_permission(org: Org, auditor: User) -> None:
    document = ready_document(PO, org.dept_a)
    response = signed_in(auditor).post(
        f"/documents/{document.pk}/close/",
        {
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
            "submit_as": "direct",
        },
    )
    page = text(response)
    assert "you lack the permission" in page and "close.direct" in page


# --- reopen --------------------------------------------------------------------------------


def test_supervisor_reopens_directly(org: Org, operator: User, supervisor: User) -> None:
    document = ready_document(PO, org.dept_a)
    document_close(actor=operator, document=document, reason_code="completed")
    response = signed_in(supervisor).post(
        f"/documents/{document.pk}/reopen/",
        {"reason": "wrong_close", "remark": "closed by mistake", "submit_as": "direct"},
    )
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN


def test_operator_reopen_becomes_a_request_and_needs_a_remark(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("反结案", action="reopen")
    document = ready_document(PO, org.dept_a)
    document_close(actor=operator, document=document, reason_code="completed")
    client = signed_in(operator)
    page = text(client.get(f"/documents/{document.pk}/reopen/"))
    assert "Request a reopen" in page
    response = client.post(f"/documents/{document.pk}/reopen/", {"reason": "late_delivery"})
    assert "This field is required" in text(response)
    response = client.post(
        f"/documents/{document.pk}/reopen/", {"reason": "late_delivery", "remark": "goods came"}
    )
    request = CloseRequest.objects.get(document=document, action="reopen")
    assert response["Location"] == f"/requests/{request.pk}/"


# --- approvals inbox -------------------------------------------------------------------------


def test_inbox_batch_decisions_and_rejection_needs_a_comment(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("例外 exception", condition="exception")
    requests = []
    for _ in range(2):
        document = short_po(org.dept_a)
        client = signed_in(operator)
        client.post(
            f"/documents/{document.pk}/close/",
            {
                "reason": "supplier_cannot_deliver",
                "remark": "short",
                "close_date": timezone.localdate().isoformat(),
                "submit_as": "request",
            },
        )
        requests.append(CloseRequest.objects.get(document=document))
    boss = signed_in(supervisor)
    ids = [r.pk for r in requests]
    response = boss.post("/inbox/", {"decision": "reject", "comment": "", "requests": ids})
    assert "a batch rejection needs a comment" in text(response)
    response = boss.post("/inbox/", {"decision": "approve", "comment": "ok", "requests": ids})
    assert 'id="decide-results"' in text(response)
    assert set(CloseRequest.objects.filter(pk__in=ids).values_list("state", flat=True)) == {
        RequestState.EXECUTED
    }
    mine = text(signed_in(operator).get("/inbox/"))
    assert all(f"#{i}" in mine for i in ids)


def test_the_requester_cannot_approve_their_own_request(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("例外 exception", condition="exception")
    document = short_po(org.dept_a)
    client = signed_in(supervisor)
    client.post(
        f"/documents/{document.pk}/close/",
        {
            "reason": "supplier_cannot_deliver",
            "remark": "short",
            "close_date": timezone.localdate().isoformat(),
            "submit_as": "request",
        },
    )
    request = CloseRequest.objects.get(document=document)
    page = text(client.get(f"/requests/{request.pk}/"))
    assert 'id="approve"' not in page and 'id="withdraw"' in page
    response = client.post(f"/requests/{request.pk}/", {"decision": "approve"})
    assert response.status_code == 200
    request.refresh_from_db()
    assert request.state == RequestState.PENDING


# --- batch close ---------------------------------------------------------------------------


def test_batch_close_preview_run_progress_and_csv(
    org: Org, operator: User, settings: Settings, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    ready = [ready_document(PO, org.dept_a) for _ in range(3)]
    short = short_po(org.dept_a)
    client = signed_in(operator)
    numbers = [d.number for d in [*ready, short]]
    page = text(client.post("/batches/new/", {"doc_type": PO, "numbers": numbers}))
    assert "4 documents selected." in page
    form = {
        "doc_type": PO,
        "numbers": numbers,
        "reason": "completed",
        "close_date": timezone.localdate().isoformat(),
    }
    # The short document would need a remark to close: the form asks for it (issue 17 §5).
    response = client.post("/batches/new/", form)
    assert response.status_code == 400 and "write a remark" in text(response)
    assert BatchJob.objects.get().state == BatchState.CANCELLED
    response = client.post("/batches/new/", {**form, "remark": "short delivery accepted"})
    job = BatchJob.objects.exclude(state=BatchState.CANCELLED).get()
    assert response["Location"] == f"/batches/{job.pk}/"
    assert job.state == BatchState.PREVIEWED and job.predicted.get("would_close") == 4
    page = text(client.get(f"/batches/{job.pk}/"))
    assert 'id="batch-start"' in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/batches/{job.pk}/", {"op": "start"})
    job.refresh_from_db()
    assert job.state == BatchState.DONE and job.percent == 100
    progress = text(client.get(f"/batches/{job.pk}/progress/"))
    assert 'id="percent">100%' in progress and "hx-trigger" not in progress
    response = client.get(f"/batches/{job.pk}/results.csv")
    csv_text = b"".join(response.streaming_content).decode("utf-8-sig")  # streamed export
    assert csv_text.count("\n") == 5 and short.number in csv_text
    closed = Document.objects.filter(pk__in=[d.pk for d in ready], close_state=CloseState.CLOSED)
    assert closed.count() == 3


def test_batch_from_all_matching_the_filter(org: Org, operator: User, settings: Settings) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    ready = [ready_document(PO, org.dept_a) for _ in range(2)]
    short_po(org.dept_a)
    signed_in(operator).post(
        "/batches/new/",
        {
            "doc_type": PO,
            "all": "1",
            "verdict": "ready",
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
        },
    )
    job = BatchJob.objects.get()
    assert job.total == len(ready)


def test_batch_of_another_user_is_refused(org: Org, operator: User, supervisor: User) -> None:
    ready_document(PO, org.dept_a)
    client = signed_in(operator)
    number = Document.objects.get().number
    client.post(
        "/batches/new/",
        {
            "doc_type": PO,
            "numbers": [number],
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
        },
    )
    job = BatchJob.objects.get()
    response = signed_in(supervisor).get(f"/batches/{job.pk}/")
    assert response.status_code == 403 and "belongs to another user" in text(response)


def test_batch_needs_the_batch_permission(org: Org, auditor: User) -> None:
    document = ready_document(PO, org.dept_a)
    response = signed_in(auditor).post(
        "/batches/new/",
        {
            "doc_type": PO,
            "numbers": [document.number],
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
        },
    )
    assert "batch.run" in text(response) and "you lack the permission" in text(response)


# --- audit log and notifications -------------------------------------------------------------


def test_audit_log_is_for_auditors_and_verifies_the_chain(
    org: Org, operator: User, auditor: User, ready_po: Document
) -> None:
    document_close(actor=operator, document=ready_po, reason_code="completed")
    response = signed_in(operator).get("/audit/")
    assert response.status_code == 403 and "audit.view" in text(response)
    client = signed_in(auditor)
    page = text(client.get("/audit/", {"document": ready_po.number, "user": "op"}))
    assert ready_po.number in page and "document closed" in page
    page = text(client.get("/audit/", {"document": ready_po.number, "verify": "1"}))
    assert "Chain intact" in page
    page = text(client.get("/audit/", {"user": "nobody"}))
    assert "No event matches the filter." in page


def test_notifications_mark_read(operator: User, supervisor: User) -> None:
    own = Notification.objects.create(user=operator, kind="x", title="one", body="b")
    other = Notification.objects.create(user=supervisor, kind="x", title="two", body="b")
    client = signed_in(operator)
    assert "one" in text(client.get("/notifications/"))
    response = client.post("/notifications/", {"ids": [other.pk]})
    assert "is not in op" in text(response)
    client.post("/notifications/", {"ids": [own.pk]})
    own.refresh_from_db()
    other.refresh_from_db()
    assert own.read_at is not None and other.read_at is None


def test_every_page_has_a_help_panel_in_both_languages(operator: User) -> None:
    for language, words in (("en", "Standard procedure"), ("zh-hans", "标准流程")):
        client = signed_in(operator, language)
        for url in ("/queue/purchase_order/", "/inbox/", "/notifications/"):
            assert words in text(client.get(url)), (language, url)


def test_a_company_wide_grant_does_not_show_another_company(org: Org, operator: User) -> None:
    from closeout.core.services import org_unit_get_or_create

    other_company = org_unit_get_or_create(code="OTHER", name="另一公司 Other company")
    theirs = make_document(PO, other_company)
    mine = make_document(PO, org.dept_a)
    page = text(signed_in(operator).get("/queue/purchase_order/"))
    assert mine.number in page and theirs.number not in page


def test_progress_keeps_polling_while_the_batch_runs(org: Org, operator: User) -> None:
    document = ready_document(PO, org.dept_a)
    client = signed_in(operator)
    client.post(
        "/batches/new/",
        {
            "doc_type": PO,
            "numbers": [document.number],
            "reason": "completed",
            "close_date": timezone.localdate().isoformat(),
        },
    )
    job = BatchJob.objects.get()
    client.post(f"/batches/{job.pk}/", {"op": "start"})  # the run starts after commit: not here
    progress = client.get(f"/batches/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in text(progress) and 'id="percent">0%' in text(progress)
    assert "HX-Refresh" not in progress


def test_the_requester_withdraws_a_pending_request(org: Org, operator: User) -> None:
    make_route("例外 exception", condition="exception")
    document = short_po(org.dept_a)
    client = signed_in(operator)
    client.post(
        f"/documents/{document.pk}/close/",
        {
            "reason": "supplier_cannot_deliver",
            "remark": "short",
            "close_date": timezone.localdate().isoformat(),
            "submit_as": "request",
        },
    )
    request = CloseRequest.objects.get(document=document)
    client.post(f"/requests/{request.pk}/", {"withdraw": "1", "decision": "reject"})
    request.refresh_from_db()
    document.refresh_from_db()
    assert request.state == RequestState.WITHDRAWN and document.close_state == CloseState.OPEN


@pytest.mark.parametrize(
    ("sort", "after"),
    [("document_date", "not-a-date|5"), ("-total_amount_company", "abc|7"), ("id", "x|y")],
)
def test_a_damaged_cursor_starts_from_the_first_page(
    org: Org, operator: User, sort: str, after: str
) -> None:
    document = make_document(PO, org.dept_a)
    response = signed_in(operator).get("/queue/purchase_order/", {"sort": sort, "after": after})
    assert response.status_code == 200 and document.number in text(response)


def test_the_document_page_offers_only_what_the_user_may_do(
    org: Org, auditor: User, operator: User, ready_po: Document
) -> None:
    assert 'id="close-button"' not in text(signed_in(auditor).get(f"/documents/{ready_po.pk}/"))
    assert 'id="close-button"' in text(signed_in(operator).get(f"/documents/{ready_po.pk}/"))


# --- work queue (issue 17, item 6) ------------------------------------------------------------


def test_the_to_close_tab_lists_what_is_still_to_close_unless_states_are_chosen(
    org: Org, operator: User
) -> None:
    lenient(PO)
    still_open = make_document(PO, org.dept_a, number="TC-OPEN")
    closed = make_document(PO, org.dept_a, number="TC-CLOSED")
    document_close(actor=operator, document=closed, reason_code="completed", remark="done")
    client = signed_in(operator)
    page = text(client.get("/queue/purchase_order/"))
    assert still_open.number in page and closed.number not in page
    assert '<span class="count">1</span>' in page  # the badge counts the same documents
    chosen = text(client.get("/queue/purchase_order/", {"state": "closed"}))
    assert closed.number in chosen and still_open.number not in chosen


def test_number_search_finds_the_number_anywhere_in_any_case(org: Org, operator: User) -> None:
    make_document(PO, org.dept_a, number="PO-2026-00417")
    make_document(PO, org.dept_a, number="PO-2026-00999")
    page = text(signed_in(operator).get("/queue/purchase_order/", {"number": "0417"}))
    assert "PO-2026-00417" in page and "PO-2026-00999" not in page
    lower = text(signed_in(operator).get("/queue/purchase_order/", {"number": "po-2026-004"}))
    assert "PO-2026-00417" in lower


def test_tabs_only_for_types_the_user_may_see(org: Org) -> None:
    clerk = user_with_role("po-clerk", "operator", org.dept_a)
    Grant.objects.filter(user=clerk).update(doc_types=[PO])
    client = signed_in(clerk)
    page = text(client.get("/queue/purchase_order/"))
    assert 'id="tab-purchase_order"' in page and 'id="tab-sales_order"' not in page
    assert client.get("/queue/sales_order/").status_code == 404
    assert client.get("/").url.endswith("/queue/purchase_order/")


def test_amounts_are_grouped_in_thousands_and_right_aligned(org: Org, operator: User) -> None:
    make_document(PO, org.dept_a, lines=((1000, 1234.5),))
    page = text(signed_in(operator).get("/queue/purchase_order/"))
    assert '<td data-column="amount" class="num nowrap">1,234,500.00</td>' in page


def test_saved_filters_are_per_user_and_only_their_owner_deletes_them(
    org: Org, operator: User, outsider: User
) -> None:
    make_document(PO, org.dept_a, number="SF-1")
    client = signed_in(operator)
    query = "number=SF&sort=-id&after=junk"
    saved = client.post(
        "/queue/purchase_order/filters/", {"name": "我的筛选", "query": query}, follow=True
    )
    assert "SF-1" in text(saved)
    [mine] = SavedQueueFilter.objects.filter(user=operator)
    assert mine.name == "我的筛选" and "after" not in mine.query and "number=SF" in mine.query
    assert "我的筛选" in text(client.get("/queue/purchase_order/"))
    # Someone else neither sees nor deletes it.
    other = signed_in(outsider)
    assert "我的筛选" not in text(other.get("/queue/purchase_order/"))
    other.post(f"/queue/purchase_order/filters/{mine.pk}/delete/")
    assert SavedQueueFilter.objects.filter(pk=mine.pk).exists()
    client.post(f"/queue/purchase_order/filters/{mine.pk}/delete/")
    assert not SavedQueueFilter.objects.filter(pk=mine.pk).exists()


def test_a_saved_filter_with_an_invalid_query_is_refused(org: Org, operator: User) -> None:
    client = signed_in(operator)
    response = client.post(
        "/queue/purchase_order/filters/",
        {"name": "bad", "query": "date_from=2026-13-40"},
        follow=True,
    )
    assert not SavedQueueFilter.objects.exists()
    assert "filter first" in text(response)
