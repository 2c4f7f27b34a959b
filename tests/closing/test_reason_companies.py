"""Reason codes per company: a code of the group serves every company, a company's own code
serves only its documents and overrides the group's code of the same name there; closes by
service, API, import and page, the forms' lists and the configuration page all keep to it."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.api.services import api_token_create
from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.models import ReasonAction, ReasonCode
from closeout.closing.reasons import reason_choices, reason_code_save
from closeout.closing.services import document_close
from closeout.core.errors import InvalidInput, PermissionDenied
from tests.api.conftest import Api
from tests.batches.test_imports import csv_bytes, errors_of, validate
from tests.companies.conftest import two_companies
from tests.factories import PO, ready_document, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000


@pytest.fixture
def world() -> dict[str, Any]:
    cn, us, cn_dept, us_dept = two_companies()
    both = user_with_role("both", "admin", cn.unit)
    grant_create(actor=None, user=both, role=Role.objects.get(code="admin"), org_unit=us.unit)
    reason_code_save(
        actor=both,
        company=us,
        code="us_only",
        action="close",
        label_zh="美国专用",
        label_en="US only",
    )
    return {
        "cn": cn,
        "us": us,
        "both": both,
        "cn_only": user_with_role("cn-only", "admin", cn.unit),
        "doc_cn": ready_document(PO, cn_dept, number="PO-C1"),
        "doc_us": ready_document(PO, us_dept, number="PO-U1"),
    }


def test_a_code_of_another_company_is_refused_with_a_clear_message(world: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as refused:
        document_close(actor=world["both"], document=world["doc_cn"], reason_code="us_only")
    assert "reason 'us_only' is a reason of company US01" in refused.value.message
    assert "document of company CN01" in refused.value.message
    assert "completed" in refused.value.details["allowed"]
    assert "us_only" not in refused.value.details["allowed"]
    zh = refused.value.details["message_zh"]
    assert "us_only" in zh and "US01" in zh and "CN01" in zh and "公司" in zh
    world["doc_cn"].refresh_from_db()
    assert world["doc_cn"].close_state == "open"
    result = document_close(actor=world["both"], document=world["doc_us"], reason_code="us_only")
    assert result.header_closed


def test_a_company_code_overrides_the_group_code_there_only(world: dict[str, Any]) -> None:
    group = ReasonCode.objects.get(code="completed", company__isnull=True)
    reason_code_save(
        actor=world["both"],
        company=world["us"],
        code="completed",
        action="close",
        label_zh="美国完成",
        label_en="Done (US)",
        active=False,
    )
    with pytest.raises(InvalidInput, match="unknown close reason 'completed'"):
        document_close(actor=world["both"], document=world["doc_us"], reason_code="completed")
    assert document_close(
        actor=world["both"], document=world["doc_cn"], reason_code="completed"
    ).header_closed
    group.refresh_from_db()
    assert group.active and group.label_en != "Done (US)"
    us_codes = {r.code for r in reason_choices(ReasonAction.CLOSE, world["us"].pk)}
    cn_codes = {r.code for r in reason_choices(ReasonAction.CLOSE, world["cn"].pk)}
    assert "completed" not in us_codes and "us_only" in us_codes
    assert "completed" in cn_codes and "us_only" not in cn_codes


def test_the_api_refuses_a_code_of_another_company(world: dict[str, Any]) -> None:
    api = Api(Client(), api_token_create(actor=None, user=world["both"], name="t").raw)
    answer = api.post("/api/documents/purchase_order/PO-C1/close", {"reason": "us_only"})
    assert answer.status_code == 422, answer.content
    body = answer.json()
    assert "company US01" in body["message"] and body["details"]["field"] == "reason"
    answer = api.post("/api/documents/purchase_order/PO-U1/close", {"reason": "us_only"})
    assert answer.status_code == 200, answer.content


def test_the_import_names_row_field_and_document(world: dict[str, Any]) -> None:
    content = csv_bytes(
        [
            ["purchase_order", "PO-C1", "", "close", "us_only", "", ""],
            ["purchase_order", "PO-U1", "", "close", "us_only", "", ""],
        ]
    )
    imported = validate(world["both"], content)
    errors = errors_of(imported)
    assert list(errors) == [2], errors
    ((column, message),) = errors[2]
    assert column == "reason" and "PO-C1" in message and "company US01" in message
    assert imported.valid_rows == 1


def test_the_close_form_lists_the_codes_of_the_document_company(world: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world["both"])
    page_cn = client.get(reverse("web:close", args=[world["doc_cn"].pk]))
    page_us = client.get(reverse("web:close", args=[world["doc_us"].pk]))
    assert page_cn.status_code == page_us.status_code == 200
    assert 'value="us_only"' not in page_cn.content.decode()
    assert 'value="us_only"' in page_us.content.decode()
    answer = client.post(
        reverse("web:close", args=[world["doc_cn"].pk]),
        {"reason": "us_only", "close_date": "2026-01-01"},
    )
    world["doc_cn"].refresh_from_db()
    assert answer.status_code != 302 and world["doc_cn"].close_state == "open"


def test_a_one_company_user_neither_sees_nor_edits_another_company_codes(
    world: dict[str, Any],
) -> None:
    cn_only: User = world["cn_only"]
    with pytest.raises(PermissionDenied):
        reason_code_save(
            actor=cn_only, company=world["us"], code="us_only", action="close",
            label_zh="改", label_en="changed",
        )  # fmt: skip
    with pytest.raises(PermissionDenied):
        reason_code_save(
            actor=cn_only, code="group_new", action="close", label_zh="新", label_en="new"
        )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cn_only)
    answer = client.get("/config/reasons/")
    page = answer.content.decode()
    assert "us_only" not in page and "completed" in page
    assert [c for c, _ in answer.context["form"].fields["company"].choices] == ["CN01"]
    refused = client.post(
        "/config/reasons/",
        {"company": "US01", "code": "us_only", "action": "close", "label_zh": "改",
         "label_en": "changed", "active": "on"},
    )  # fmt: skip
    assert refused.status_code == 400
    assert ReasonCode.objects.get(code="us_only").label_en == "US only"
    saved = client.post(
        "/config/reasons/",
        {"company": "CN01", "code": "cn_site", "action": "close", "label_zh": "工地",
         "label_en": "Site", "active": "on"},
    )  # fmt: skip
    assert saved.status_code == 302
    reason = ReasonCode.objects.get(code="cn_site")
    assert reason.company == world["cn"]
    event = AuditEvent.objects.filter(action=AuditAction.REASON_CHANGED).latest("pk")
    assert event.object_repr == "CN01/cn_site"
    assert event.data["company"] == "CN01" and event.data["label_en"] == {
        "before": None,
        "after": "Site",
    }
    both = Client(HTTP_ACCEPT_LANGUAGE="en")
    both.force_login(world["both"])
    answer = both.get("/config/reasons/")
    assert "us_only" in answer.content.decode() and "cn_site" in answer.content.decode()
    assert [c for c, _ in answer.context["form"].fields["company"].choices] == ["", "CN01", "US01"]


def test_a_batch_refuses_a_company_code_on_the_other_company_documents(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from closeout.batches.models import BatchAction, ItemState
    from closeout.batches.selectors import batch_results
    from closeout.batches.services import batch_create, batch_start

    job = batch_create(
        actor=world["both"],
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=["PO-C1", "PO-U1"],
        reason_code="us_only",
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch_start(actor=world["both"], job=job)
    results = {i.label: i for i in batch_results(job)}
    assert results["PO-U1"].state == ItemState.DONE
    assert results["PO-C1"].state == ItemState.FAILED
    assert "company US01" in results["PO-C1"].message
    world["doc_cn"].refresh_from_db()
    assert world["doc_cn"].close_state == "open"


def test_an_undo_takes_only_a_reason_valid_in_every_company_it_reopens(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    """The undo's one reason is recorded on each document it reopens: a reopen reason of
    company US01 is refused for a batch that closed a document of the other company."""
    from closeout.batches.models import BatchAction, BatchState
    from closeout.batches.services import batch_create, batch_start
    from closeout.batches.undo import batch_undo_create

    both = world["both"]
    reason_code_save(
        actor=both,
        company=world["us"],
        code="us_reopen",
        action="reopen",
        label_zh="美国反结案",
        label_en="US reopen",
    )
    job = batch_create(
        actor=both,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=["PO-C1"],
        reason_code="completed",
        remark="done",
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch_start(actor=both, job=job)
    job.refresh_from_db()
    assert job.state == BatchState.DONE
    with pytest.raises(InvalidInput) as refused:
        batch_undo_create(actor=both, job_id=job.pk, reason_code="us_reopen")
    assert "is a reason of company US01" in refused.value.message
    assert batch_undo_create(actor=both, job_id=job.pk).pk
