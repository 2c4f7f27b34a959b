"""Consistency checks (数据校验, S21): each planted inconsistency is found by exactly its
check, clean documents by none; runs are stored, audited and notify when scheduled."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.services import document_close, document_reopen
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import Document, EventKind, EventStatus
from closeout.notifications.models import Notification
from closeout.reports.diagnostic_base import Options
from closeout.reports.diagnostics import (
    CHECKS,
    PROBLEM_LABELS,
    diagnostic_rows,
    diagnostics_run,
)
from closeout.reports.models import DiagnosticRun, DiagnosticTrigger
from closeout.reports.tasks import diagnostics_task
from tests.factories import (
    AP,
    AR,
    PO,
    SC,
    SO,
    Org,
    make_document,
    post,
    ready_document,
    user_with_role,
)

pytestmark = pytest.mark.django_db


def found(code: str, **kwargs: object) -> set[tuple[str, int | None]]:
    return {(row["doc_number"], row.get("line")) for row in diagnostic_rows(code, **kwargs)}  # type: ignore[arg-type]


def numbers(code: str, **kwargs: object) -> set[str]:
    return {number for number, _line in found(code, **kwargs)}


@pytest.fixture
def planted(org: Org, supervisor: User) -> dict[str, Document]:
    """One clean (complete) document per type and one document per inconsistency."""
    docs: dict[str, Document] = {}
    for t in (PO, SO, SC, AR, AP):
        docs[f"clean_{t}"] = ready_document(t, org.dept_a)
    # Purchase orders: over-received; invoiced beyond received; in progress (not a problem).
    docs["po_over"] = make_document(PO, org.dept_a, ((10, 5),))
    post(docs["po_over"], EventKind.RECEIPT, 1, 12)
    docs["po_inv"] = make_document(PO, org.dept_a, ((10, 5), (3, 1)))
    post(docs["po_inv"], EventKind.RECEIPT, 2, 3)
    post(docs["po_inv"], EventKind.INVOICE, 2, 5, 5)
    docs["po_progress"] = make_document(PO, org.dept_a, ((10, 5),))
    post(docs["po_progress"], EventKind.RECEIPT, 1, 5)
    post(docs["po_progress"], EventKind.INVOICE, 1, 5, 25)
    # Sales order shipped beyond the order.
    docs["so_over"] = make_document(SO, org.dept_b, ((4, 10),))
    post(docs["so_over"], EventKind.SHIPMENT, 1, 6)
    # Fully received and invoiced at another amount (60 for an order of 50).
    docs["po_amount"] = make_document(PO, org.dept_a, ((10, 5),))
    post(docs["po_amount"], EventKind.RECEIPT, 1, 10)
    post(docs["po_amount"], EventKind.INVOICE, 1, 10, 60)
    # Stock count: book 5, adjustment −8.
    docs["sc_negative"] = make_document(SC, org.dept_a, ((5, 2), (3, 2)))
    post(docs["sc_negative"], EventKind.COUNT_RESULT, 1, 0)
    post(docs["sc_negative"], EventKind.STOCK_ADJUSTMENT, 1, -8)
    # Closed, then a receipt arrives: quarantined.
    docs["po_late"] = ready_document(PO, org.dept_a)
    document_close(actor=supervisor, document=docs["po_late"], reason_code="completed")
    post(docs["po_late"], EventKind.RECEIPT, 1, 1)
    # Receivable collected beyond its invoice.
    docs["ar_overpaid"] = make_document(AR, org.dept_a, ((1, 100),))
    post(docs["ar_overpaid"], EventKind.INVOICE, 1, 1, 100)
    post(docs["ar_overpaid"], EventKind.PAYMENT, 1, 0, 130)
    # Closed and reopened, left open.
    docs["po_reopened"] = ready_document(PO, org.dept_b)
    document_close(actor=supervisor, document=docs["po_reopened"], reason_code="completed")
    document_reopen(actor=supervisor, document=docs["po_reopened"], reason_code="wrong_close")
    return docs


def test_each_check_finds_exactly_its_planted_documents(planted: dict[str, Document]) -> None:
    n = {key: doc.number for key, doc in planted.items()}
    assert found("po_quantities") == {(n["po_over"], 1), (n["po_inv"], 2)}
    assert found("so_quantities") == {(n["so_over"], 1)}
    assert numbers("order_invoice_amount") == {n["po_amount"]}
    assert found("negative_stock") == {(n["sc_negative"], 1)}
    assert numbers("closed_with_events") == {n["po_late"]}
    assert numbers("settled_beyond_invoice") == {n["ar_overpaid"]}
    # A reopen is reported after N days: none is that old, all are with N = 0.
    assert numbers("reopened_not_closed") == set()
    assert numbers("reopened_not_closed", options=Options.default(0)) == {n["po_reopened"]}
    # Complete documents left open: the clean ones, the reopened one (complete again) and the
    # overpaid receivable (its open balance is negative: the closing rules let it pass).
    ready = {n[f"clean_{t}"] for t in (PO, SO, SC, AR, AP)} | {n["po_reopened"], n["ar_overpaid"]}
    assert numbers("complete_but_open") == ready


def test_problems_are_named(planted: dict[str, Document]) -> None:
    problems = {row["doc_number"]: row["problem"] for row in diagnostic_rows("po_quantities")}
    assert problems == {
        planted["po_over"].number: "over_fulfilled",
        planted["po_inv"].number: "invoiced_beyond_fulfilled",
    }
    row = diagnostic_rows("order_invoice_amount").get()
    assert Decimal(str(row["difference"])) == Decimal(10)
    row = diagnostic_rows("negative_stock").get()
    assert Decimal(str(row["resulting"])) == Decimal(-3)


def test_the_drill_down_is_live(planted: dict[str, Document]) -> None:
    """A fix (the credit note for the excess invoice) takes the line off the list at once."""
    post(planted["po_inv"], EventKind.CREDIT_NOTE, 2, 2, 2)
    assert found("po_quantities") == {(planted["po_over"].number, 1)}


def test_the_drill_down_keeps_to_the_visible_documents(planted: dict[str, Document]) -> None:
    from django.db.models import Q

    only_b = Q(org_unit__path__startswith=planted["so_over"].org_unit.path)
    assert numbers("so_quantities", visible=only_b) == {planted["so_over"].number}
    assert numbers("po_quantities", visible=only_b) == set()


def test_manual_run_counts_stores_and_audits(planted: dict[str, Document], org: Org) -> None:
    viewer = user_with_role("reports", "auditor", org.company)
    run = diagnostics_run(actor=viewer)
    assert run.trigger == DiagnosticTrigger.MANUAL and run.run_by == viewer
    assert run.counts["po_quantities"] == 2
    assert run.counts["negative_stock"] == 1
    assert set(run.counts) == {c.code for c in CHECKS}
    assert run.problems == sum(run.counts.values())
    event = AuditEvent.objects.get(action=AuditAction.DIAGNOSTICS_RUN)
    assert event.actor == viewer and event.data["counts"] == run.counts
    assert not Notification.objects.filter(kind="diagnostics_problems").exists()


def test_a_run_needs_report_view(org: Org) -> None:
    operator = user_with_role("no-reports", "operator", org.company)
    with pytest.raises(PermissionDenied, match=r"report\.view"):
        diagnostics_run(actor=operator)
    assert not DiagnosticRun.objects.exists()


def test_bad_reopen_age_is_refused() -> None:
    with pytest.raises(InvalidInput, match="0 or more days"):
        Options.default(-1)


def test_scheduled_task_runs_and_notifies_report_viewers(
    planted: dict[str, Document], org: Org
) -> None:
    viewer = user_with_role("reports", "auditor", org.company)
    operator = user_with_role("no-reports", "operator", org.company)
    problems = diagnostics_task.run()
    run = DiagnosticRun.objects.get()
    assert run.trigger == DiagnosticTrigger.SCHEDULED and run.run_by is None
    assert problems == run.problems > 0
    notes = Notification.objects.filter(kind="diagnostics_problems")
    assert viewer.pk in {n.user_id for n in notes}
    assert operator.pk not in {n.user_id for n in notes}
    assert str(run.pk) in notes.first().title  # type: ignore[union-attr]


def test_scheduled_run_on_clean_data_notifies_nobody(org: Org) -> None:
    user_with_role("reports", "auditor", org.company)
    diagnostics_task.run()
    assert DiagnosticRun.objects.get().problems == 0
    assert not Notification.objects.exists()


def test_quarantined_event_status(planted: dict[str, Document]) -> None:
    assert planted["po_late"].events.filter(status=EventStatus.QUARANTINED).count() == 1


def test_beat_schedules_the_checks() -> None:
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["diagnostics"]["task"] == "closeout.diagnostics"


def test_command_line_run_and_show(planted: dict[str, Document]) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("diagnose", "run", stdout=out)
    assert "po_quantities" in out.getvalue()
    run = DiagnosticRun.objects.get()
    assert run.run_by is None and run.counts["negative_stock"] == 1
    out = StringIO()
    call_command("diagnose", "show", "negative_stock", stdout=out)
    text = out.getvalue()
    label = str(PROBLEM_LABELS["negative_resulting_stock"])  # in the configured language
    assert planted["sc_negative"].number in text and label in text
    assert "next:" in text
    with pytest.raises(CommandError, match="unknown check 'nope'"):
        call_command("diagnose", "show", "nope", stdout=StringIO())


def test_settlement_is_compared_per_document(org: Org) -> None:
    """One line paid beyond its invoice while the document as a whole is not: not reported."""
    payable = make_document(AP, org.dept_a, ((1, 50), (1, 50)))
    for line_no in (1, 2):
        post(payable, EventKind.INVOICE, line_no, 1, 50)
    post(payable, EventKind.PAYMENT, 1, 0, 60)
    post(payable, EventKind.PAYMENT, 2, 0, 30)
    assert numbers("settled_beyond_invoice") == set()
    post(payable, EventKind.PAYMENT, 2, 0, 15)
    assert numbers("settled_beyond_invoice") == {payable.number}
    row = diagnostic_rows("settled_beyond_invoice").get()
    assert Decimal(str(row["excess"])) == Decimal(5)
