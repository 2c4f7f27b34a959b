"""Accounting periods are per company: a closed period in company A does not affect B."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from closeout.access.companies import company_create
from closeout.approvals.models import AccountingPeriod
from closeout.approvals.selectors import period_is_closed
from closeout.batches.models import BatchAction, BatchItem
from closeout.batches.services import batch_create, batch_preview
from closeout.closing.services import document_close
from closeout.core.errors import CompanyAmbiguous, InvalidInput
from closeout.core.services import org_unit_create
from closeout.documents.models import CloseState
from tests.factories import ready_document, user_with_role

pytestmark = pytest.mark.django_db

PO = "purchase_order"


@pytest.fixture
def setup() -> dict[str, Any]:
    a = company_create(actor=None, code="CO-A", name="甲公司", currency="CNY")
    b = company_create(actor=None, code="CO-B", name="乙公司", currency="USD")
    today = timezone.localdate()
    period = AccountingPeriod.objects.create(
        name="closed",
        company=a,
        start=today - timedelta(days=40),
        end=today - timedelta(days=10),
        closed=True,
    )
    operator = user_with_role("op-a", "operator", a.unit)
    for unit in (b.unit,):
        from closeout.access.models import Role
        from closeout.access.services import grant_create

        grant_create(
            actor=None, user=operator, role=Role.objects.get(code="operator"), org_unit=unit
        )
    dept_a = org_unit_create(code="CO-A-P", name="采购", parent=a.unit)
    dept_b = org_unit_create(code="CO-B-P", name="Purchasing", parent=b.unit)
    return {
        "a": a,
        "b": b,
        "day": period.start + timedelta(days=1),
        "operator": operator,
        "doc_a": ready_document(PO, dept_a, number="PO-1"),
        "doc_b": ready_document(PO, dept_b, number="PO-1"),
    }


def test_a_closed_period_of_a_refuses_a_close_there_and_not_in_b(setup: dict[str, Any]) -> None:
    day, operator = setup["day"], setup["operator"]
    assert period_is_closed(day, setup["a"].pk) and not period_is_closed(day, setup["b"].pk)
    with pytest.raises(InvalidInput, match="closed accounting period"):
        document_close(
            actor=operator, document=setup["doc_a"], reason_code="completed", close_date=day
        )
    document_close(actor=operator, document=setup["doc_b"], reason_code="completed", close_date=day)
    setup["doc_b"].refresh_from_db()
    setup["doc_a"].refresh_from_db()
    assert setup["doc_b"].close_state == CloseState.CLOSED
    assert setup["doc_a"].close_state == CloseState.OPEN


def test_a_batch_refuses_only_the_documents_of_the_closed_company(setup: dict[str, Any]) -> None:
    operator, day = setup["operator"], setup["day"]
    with pytest.raises(CompanyAmbiguous, match="CO-A, CO-B"):
        batch_create(
            actor=operator, action=BatchAction.CLOSE, doc_type=PO, numbers=["PO-1"],
            reason_code="completed", close_date=day,
        )  # fmt: skip
    outcomes = {}
    for code in ("CO-A", "CO-B"):
        job = batch_create(
            actor=operator, action=BatchAction.CLOSE, doc_type=PO, numbers=["PO-1"],
            reason_code="completed", close_date=day, company=code,
        )  # fmt: skip
        batch_preview(actor=operator, job=job)
        outcomes[code] = BatchItem.objects.get(job=job).predicted
    assert outcomes == {"CO-A": "refused", "CO-B": "would_close"}


def test_a_period_of_every_company_still_closes_them_all(setup: dict[str, Any]) -> None:
    today = timezone.localdate()
    AccountingPeriod.objects.create(
        name="old", start=today - timedelta(days=400), end=today - timedelta(days=300), closed=True
    )
    day = today - timedelta(days=350)
    assert period_is_closed(day, setup["a"].pk) and period_is_closed(day, setup["b"].pk)
