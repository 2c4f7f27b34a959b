"""Bad input on the pages is a 400 with a plain message (Chinese by default), never a 500
(issue 12, section 4): unbounded ages and periods, NUL characters and digits that are not
ASCII in the queue filters, the batch form, the reports page and the archive page."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from closeout.batches.models import BatchJob
from tests.factories import PO, Org, ready_document, user_with_role
from tests.web.conftest import signed_in
from tests.web.zh_check import problems, raw_codes

pytestmark = pytest.mark.django_db


def chinese(user: User) -> Client:
    return signed_in(user, "zh-hans")


def refused_page(response: Any, *expected: str, status: int = 400) -> str:
    assert response.status_code == status, response.content[:2000]
    page = response.content.decode()
    for text in expected:
        assert text in page, (text, page[:3000])
    return page


QUEUE = "/queue/purchase_order/"


@pytest.mark.parametrize("fmt", ["", "csv", "xlsx"])
def test_an_unbounded_age_on_the_queue_and_its_exports_is_refused(
    org: Org, operator: User, fmt: str
) -> None:
    ready_document(PO, org.dept_a)
    params = {"min_age_days": "999999999", **({"format": fmt} if fmt else {})}
    refused_page(chinese(operator).get(QUEUE, params), "36500")


@pytest.mark.parametrize(
    "params",
    [
        {"min_age_days": "١٢"},
        {"min_age_days": "１２"},
        {"date_from": "２０２６-01-01"},
        {"date_from": "0001-01-01"},
        {"date_to": "9999-12-31"},
    ],
)
def test_queue_filters_with_foreign_digits_or_far_dates_are_refused(
    operator: User, params: dict[str, str]
) -> None:
    page = refused_page(chinese(operator).get(QUEUE, params))
    assert "请使用数字 0-9" in page or "1900-01-01 至 2999-12-31" in page
    # The field is named in Chinese, never by its code (date_to, min_age_days …).
    assert not problems(page, codes=raw_codes())


def test_nul_in_a_page_parameter_is_refused_with_a_page(operator: User) -> None:
    """The refused input is named in the reader's words (issue 17: no field code in a Chinese
    sentence); in English by its code, as before."""
    page = refused_page(
        chinese(operator).get(QUEUE, {"number": "\x00"}), "不可见的空字符", "“单据编号”"
    )
    assert not problems(page, codes=raw_codes())
    page = refused_page(
        chinese(operator).post(reverse("web:batch_new"), {"doc_type": PO, "numbers": ["\x00"]}),
        "“单据编号”",
    )
    assert not problems(page, codes=raw_codes())
    english = signed_in(operator, "en").get(QUEUE, {"number": "\x00"})
    refused_page(english, "The input “number” holds an invisible NUL character")


def test_the_batch_form_refuses_a_filter_it_cannot_apply(org: Org, operator: User) -> None:
    ready_document(PO, org.dept_a)
    client = chinese(operator)
    first = {"doc_type": PO, "all": "1", "min_age_days": "999999999"}
    refused_page(client.post(reverse("web:batch_new"), first), "36500")
    second = {**first, "reason": "completed", "close_date": "2026-01-10"}
    refused_page(client.post(reverse("web:batch_new"), second), "36500")
    refused_page(
        client.post(reverse("web:batch_new"), {**second, "min_age_days": "١"}), "请使用数字 0-9"
    )
    assert not BatchJob.objects.exists()


def test_the_reports_page_refuses_an_unbounded_period(org: Org) -> None:
    client = chinese(user_with_role("fin", "finance", org.company))
    far = {"date_from": "0001-01-01", "date_to": "9999-12-31"}
    refused_page(client.get(reverse("web:reports"), far), "1900-01-01 至 2999-12-31")
    refused_page(client.get(reverse("web:reports"), {**far, "export": "xlsx"}))
    refused_page(client.get(reverse("web:reports"), {"date_from": "２０２６-01-01"}), "0-9")
    assert client.get(reverse("web:reports"), {"date_from": "2026-01-01"}).status_code == 200


@pytest.mark.parametrize(
    "period", ["9999-12", "0001-01", "٢٠٢٦-٠٣", "２０２６-03", "1000-01-01..9999-12-31"]
)
def test_the_archive_page_refuses_an_unbounded_period(org: Org, period: str) -> None:
    client = chinese(user_with_role("aud", "auditor", org.company))
    refused_page(client.post(reverse("web:archive_export"), {"period": period}), "不是有效的期间")


def test_a_notification_id_in_foreign_digits_is_refused(operator: User) -> None:
    response = chinese(operator).post(reverse("web:notifications"), {"ids": ["١"]})
    assert response.status_code == 400
