"""`closeout demo`: every document type in the states the demo promises, working logins,
idempotence, and `--reset` rebuilding the same data with an intact audit chain."""

from collections import Counter
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from closeout.access.models import Grant
from closeout.access.services import user_has_perm
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent
from closeout.audit.services import GENESIS_HASH, audit_chain_verify
from closeout.closing.models import SweepRun
from closeout.closing.selectors import Checklist, close_checklist_for
from closeout.core.models import OrgUnit
from closeout.demo.load import (
    DEMO_COMPANY,
    DEMO_PASSWORD,
    DEMO_USERNAMES,
    DemoReport,
    Scenario,
    demo_load,
    demo_reset,
)
from closeout.documents.models import (
    BusinessEvent,
    CloseKind,
    CloseState,
    DocType,
    Document,
    EventStatus,
)

User = get_user_model()


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoReport]:
    """Build the demo once for the module, inside a transaction rolled back at the end; each
    test runs in its own savepoint within it, so tests that reset see the built demo again."""
    with django_db_blocker.unblock(), transaction.atomic():
        report = demo_load()
        yield report
        transaction.set_rollback(True)


def _doc(label: str) -> Document:
    doc_type, number = label.split(" ", 1)
    # The scenarios are the Chinese demo company's (the US company has some of its numbers).
    return Document.objects.get(doc_type=doc_type, number=number, company__unit__code="DEMO")


def _failing(checklist: Checklist) -> set[str]:
    return {c.rule.code for c in checklist.checks if not c.passed}


def _snapshot() -> dict[str, Any]:
    """What the demo holds, without ids or times: equal snapshots mean the same data."""
    return {
        "documents": Counter(
            Document.objects.values_list("doc_type", "close_state", "close_kind", "close_reason")
        ),
        "numbers": sorted(Document.objects.values_list("doc_type", "number")),
        "events": Counter(BusinessEvent.objects.values_list("kind", "status")),
        "audit": Counter(AuditEvent.objects.values_list("action", "actor_name")),
        "users": sorted(User.objects.values_list("username", flat=True)),
        "grants": sorted(
            Grant.objects.values_list("user__username", "role__code", "org_unit__code")
        ),
        "sweeps": SweepRun.objects.count(),
    }


# --- what the demo contains --------------------------------------------------------------------


def test_every_type_is_present_in_open_and_closed_states(demo: DemoReport, db: None) -> None:
    assert demo.created
    states = Counter(Document.objects.values_list("doc_type", "close_state"))
    for doc_type in DocType.values:
        assert states[(doc_type, CloseState.OPEN)] >= 3, doc_type
        assert states[(doc_type, CloseState.CLOSED)] >= 2, doc_type
    for doc_type in (DocType.PURCHASE_ORDER, DocType.SALES_ORDER):
        assert states[(doc_type, CloseState.ON_HOLD)] == 1
    kinds = Counter(
        Document.objects.filter(close_state=CloseState.CLOSED).values_list("doc_type", "close_kind")
    )
    for doc_type in DocType.values:
        assert kinds[(doc_type, CloseKind.AUTO)] >= 1, doc_type
        assert kinds[(doc_type, CloseKind.MANUAL)] >= 1, doc_type


def test_orders_come_from_adventureworks(demo: DemoReport, db: None) -> None:
    # The approval examples (PO-APPROVAL-…) and last year's archived orders (PO-ARCH-…) are
    # the demo's own orders.
    po = (
        Document.objects.filter(doc_type=DocType.PURCHASE_ORDER, company__unit__code="DEMO")
        .exclude(number__startswith="PO-APPROVAL-")
        .exclude(number__startswith="PO-ARCH-")
    )
    assert po.count() >= 40
    assert not po.exclude(source_system="adventureworks").exists()
    assert not po.filter(partner__isnull=True).exists()
    # AdventureWorks trades in dollars; the company currency figures use the demo rate.
    sample = po.order_by("number").first()
    assert sample is not None and sample.currency == "USD"
    assert sample.total_amount_company > sample.total_amount
    assert Document.objects.filter(doc_type=DocType.SALES_ORDER, number__startswith="SO").count()


def test_every_scenario_has_documents(demo: DemoReport, db: None) -> None:
    names = [v for k, v in vars(Scenario).items() if k.isupper()]
    missing = [name for name in names if not demo.scenarios.get(name)]
    assert not missing


# For each scenario: the close state its documents are in and, for open ones, a rule that fails.
_OPEN_FAILING = {
    Scenario.SHORT_DELIVERED: {"received", "shipped"},
    Scenario.OVER_RECEIVED: {"not_over_received"},
    Scenario.INVOICE_MISMATCH: {"invoice_amount_match", "invoice_matches_order"},
    Scenario.UNPAID: {"paid", "collected", "balance_within_write_off"},
    Scenario.PARTLY_PAID: {"paid", "collected", "balance_within_write_off"},
    Scenario.PENDING_EVENT: {"events_settled"},
    Scenario.OPEN_RETURN: {"no_open_returns"},
    Scenario.VARIANCE_UNPOSTED: {"variance_posted"},
    Scenario.VARIANCE_LARGE: {"variance_value"},
    Scenario.NOT_COUNTED: {"all_counted"},
    Scenario.COSTS_PENDING: {"costs_posted"},
    Scenario.OVER_BUDGET: {"cost_within_budget"},
    Scenario.TASKS_OPEN: {"tasks_done"},
}


@pytest.mark.parametrize("scenario", sorted(_OPEN_FAILING))
def test_open_scenarios_fail_the_expected_rule(demo: DemoReport, db: None, scenario: str) -> None:
    for label in demo.scenarios[scenario]:
        document = _doc(label)
        assert document.close_state == CloseState.OPEN, label
        assert _failing(close_checklist_for(document)) & _OPEN_FAILING[scenario], label


def test_checklist_verdicts(demo: DemoReport, db: None) -> None:
    verdicts: Counter[tuple[str, str]] = Counter()
    for document in Document.objects.filter(close_state=CloseState.OPEN):
        verdicts[(document.doc_type, close_checklist_for(document).verdict)] += 1
    assert verdicts[(DocType.PURCHASE_ORDER, "exception")] >= 10
    assert verdicts[(DocType.PURCHASE_ORDER, "blocked")] >= 1
    assert verdicts[(DocType.SALES_ORDER, "blocked")] >= 2
    assert verdicts[(DocType.SALES_ORDER, "exception")] >= 5
    assert verdicts[(DocType.STOCK_COUNT, "blocked")] == 2
    assert verdicts[(DocType.STOCK_COUNT, "exception")] == 1
    assert verdicts[(DocType.PROJECT_STAGE, "warning")] == 1
    for doc_type in (DocType.RECEIVABLE, DocType.PAYABLE):
        assert verdicts[(doc_type, "exception")] >= 4


def test_ready_documents_wait_only_for_the_grace_days(demo: DemoReport, db: None) -> None:
    waiting = demo.scenarios[Scenario.READY_WAITING]
    assert len({label.split()[0] for label in waiting}) >= 3
    for label in waiting:
        document = _doc(label)
        assert document.close_state == CloseState.OPEN
        assert close_checklist_for(document).verdict == "ready", label
        assert _failing(close_checklist_for(document, for_auto=True)) == {"grace_period"}, label


def test_one_sweep_closed_some_and_left_others_waiting(demo: DemoReport, db: None) -> None:
    runs = list(SweepRun.objects.all())
    assert len(runs) == 1
    run = runs[0]
    assert run.closed >= 20
    assert run.not_due == len(demo.scenarios[Scenario.READY_WAITING])
    assert run.exception_queue >= 20 and run.blocked >= 3 and run.warning_only == 1
    auto = Document.objects.filter(close_state=CloseState.CLOSED, close_kind=CloseKind.AUTO)
    assert auto.count() == run.closed
    assert sorted(d.label for d in auto) == sorted(demo.scenarios[Scenario.AUTO_CLOSED])


def test_manual_closes_carry_reason_remark_and_user(demo: DemoReport, db: None) -> None:
    for label in demo.scenarios[Scenario.CLOSED_BY_HAND]:
        document = _doc(label)
        assert document.close_state == CloseState.CLOSED, label
        assert document.close_kind == CloseKind.MANUAL
        assert document.close_reason and document.close_remark and document.close_date
        assert document.closed_by is not None
        assert document.closed_by.get_username() in {"buyer", "seller", "keeper", "finance"}


def test_last_years_orders_are_archived(demo: DemoReport, db: None) -> None:
    labels = demo.scenarios[Scenario.ARCHIVED]
    assert len(labels) == 2
    for label in labels:
        document = _doc(label)
        assert document.close_state == CloseState.ARCHIVED, label
        archived = AuditEvent.objects.filter(
            object_type="document",
            object_id=str(document.pk),
            action=AuditAction.DOCUMENT_ARCHIVED,
        )
        assert archived.count() == 1


def test_line_closed_document_stays_open(demo: DemoReport, db: None) -> None:
    for label in demo.scenarios[Scenario.LINE_CLOSED]:
        states = Counter(_doc(label).lines.values_list("close_state", flat=True))
        assert states[CloseState.CLOSED] >= 1 and states[CloseState.OPEN] >= 1


def test_reopened_documents_show_close_and_reopen_in_the_audit_log(
    demo: DemoReport, db: None
) -> None:
    for label in demo.scenarios[Scenario.CLOSED_THEN_REOPENED]:
        document = _doc(label)
        assert document.close_state == CloseState.OPEN
        assert document.close_seq >= 1
        actions = list(
            AuditEvent.objects.filter(object_type="document", object_id=str(document.pk))
            .filter(action__in=[AuditAction.DOCUMENT_CLOSED, AuditAction.DOCUMENT_REOPENED])
            .order_by("seq")
            .values_list("action", "actor_name")
        )
        assert [a for a, _ in actions] == [
            AuditAction.DOCUMENT_CLOSED,
            AuditAction.DOCUMENT_REOPENED,
        ], label
        assert actions[1][1] == "supervisor"


def test_quarantined_and_held_documents(demo: DemoReport, db: None) -> None:
    for label in demo.scenarios[Scenario.QUARANTINED]:
        document = _doc(label)
        assert document.close_state in (CloseState.CLOSED, CloseState.ON_HOLD), label
        assert document.events.filter(status=EventStatus.QUARANTINED).exists(), label
    for label in demo.scenarios[Scenario.ON_HOLD]:
        document = _doc(label)
        assert document.close_state == CloseState.ON_HOLD and document.hold_reason
    for label in demo.scenarios[Scenario.PENDING_EVENT] + demo.scenarios[Scenario.COSTS_PENDING]:
        assert _doc(label).events.filter(status=EventStatus.PENDING).exists(), label


def test_settlement_and_count_situations(demo: DemoReport, db: None) -> None:
    for label in demo.scenarios[Scenario.SMALL_BALANCE]:
        document = _doc(label)
        assert document.close_kind == CloseKind.AUTO, label
        balance = sum(line.invoiced_amount - line.settled_amount for line in document.lines.all())
        assert 0 < balance <= 10
    for label in demo.scenarios[Scenario.VARIANCE_POSTED]:
        document = _doc(label)
        assert document.close_state == CloseState.CLOSED, label
        for line in document.lines.all():
            assert line.counted_qty is not None
            assert line.adjusted_qty == line.counted_qty - line.planned_qty
    for label in demo.scenarios[Scenario.ACCEPTED]:
        assert _doc(label).accepted_on is not None


def test_every_event_has_an_external_id_and_none_is_in_the_future(
    demo: DemoReport, db: None
) -> None:
    events = BusinessEvent.objects.all()
    assert events.count() == demo.events >= 500
    assert not events.filter(external_id="").exists()
    assert max(events.values_list("occurred_at", flat=True)) < timezone.now()


# --- users ---------------------------------------------------------------------------------


def test_demo_users_log_in_with_the_demo_password(demo: DemoReport, db: None) -> None:
    for username in DEMO_USERNAMES:
        assert authenticate(username=username, password=DEMO_PASSWORD) is not None, username
    assert authenticate(username="admin", password="wrong") is None
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.get(username="buyer").is_staff
    assert {login.username for login in demo.logins} == set(DEMO_USERNAMES)


def test_demo_grants_follow_the_roles(demo: DemoReport, db: None) -> None:
    users = {u.username: u for u in User.objects.filter(username__in=DEMO_USERNAMES)}
    purchasing = OrgUnit.objects.get(code="DEMO-PUR")
    sales = OrgUnit.objects.get(code="DEMO-SAL")
    assert user_has_perm(
        users["buyer"], "close.direct", org_unit=purchasing, doc_type=DocType.PURCHASE_ORDER
    )
    assert not user_has_perm(
        users["buyer"], "close.direct", org_unit=sales, doc_type=DocType.SALES_ORDER
    )
    assert not user_has_perm(
        users["buyer"], "close.direct", org_unit=purchasing, doc_type=DocType.STOCK_COUNT
    )
    assert user_has_perm(users["seller"], "close.direct", org_unit=sales, doc_type="receivable")
    assert user_has_perm(users["supervisor"], "reopen.approve", org_unit=sales)
    assert user_has_perm(users["finance"], "close.direct", org_unit=purchasing)
    assert user_has_perm(users["auditor"], "audit.view", org_unit=sales)
    assert not user_has_perm(users["auditor"], "close.direct", org_unit=sales)
    assert user_has_perm(users["erp"], "document.sync", org_unit=sales)
    assert user_has_perm(users["admin"], "access.manage", org_unit=purchasing)


def test_unit_scoped_users_see_one_purchasing_group(demo: DemoReport, db: None) -> None:
    """buyer_east, auditor_east and analyst_east hold their roles over the east purchasing
    group only, and both groups hold purchase orders, payables and requests."""
    from closeout.access.selectors import documents_visible_to, holds_company_wide
    from closeout.approvals.models import CloseRequest
    from closeout.demo.load import PO_EAST, PO_WEST

    users = {u.username: u for u in User.objects.filter(username__endswith="_east")}
    assert set(users) == {"buyer_east", "auditor_east", "analyst_east"}
    for unit in (PO_EAST, PO_WEST):
        for doc_type in (DocType.PURCHASE_ORDER, DocType.PAYABLE):
            assert Document.objects.filter(org_unit__code=unit, doc_type=doc_type).exists()
        assert CloseRequest.objects.filter(document__org_unit__code=unit).exists()
    for name, perm in (
        ("buyer_east", "close.direct"),
        ("auditor_east", "audit.view"),
        ("analyst_east", "report.view"),
    ):
        user = users[name]
        assert not holds_company_wide(user, perm), name
        seen = Document.objects.filter(documents_visible_to(user, perm))
        assert seen.exists(), name
        assert set(seen.values_list("org_unit__code", flat=True)) == {PO_EAST}, name
    assert not user_has_perm(users["analyst_east"], "audit.view")
    assert not user_has_perm(users["analyst_east"], "close.direct")


# --- idempotence, reset, audit -------------------------------------------------------------


def test_audit_chain_of_the_demo_verifies(demo: DemoReport, db: None) -> None:
    verdict = audit_chain_verify()
    assert verdict.intact, verdict.problem
    assert verdict.checked == AuditEvent.objects.count() == demo.audit_events


def test_second_run_changes_nothing(demo: DemoReport, db: None) -> None:
    before = _snapshot()
    out = StringIO()
    call_command("demo", stdout=out)
    assert _snapshot() == before
    text = out.getvalue()
    assert f"already present (company {DEMO_COMPANY})" in text
    assert "for demos only" in text


def test_reset_rebuilds_the_same_demo_and_spares_other_users(demo: DemoReport, db: None) -> None:
    # Make "auditor" a user of the site's own (not created by the demo), with its own password:
    # reset must keep it, and the rebuild must use it without touching the password.
    auditor = User.objects.get(username="auditor")
    auditor.email = "auditor@example.com"
    auditor.set_password("own-secret-1")
    auditor.save()
    before = _snapshot()
    out = StringIO()
    call_command("demo", "--reset", stdout=out)
    assert _snapshot() == before
    verdict = audit_chain_verify()
    assert verdict.intact, verdict.problem
    assert AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first() == 1
    assert User.objects.get(username="auditor").pk == auditor.pk
    assert authenticate(username="auditor", password="own-secret-1") is not None
    assert authenticate(username="auditor", password=DEMO_PASSWORD) is None
    text = out.getvalue()
    assert "demo built" in text and "for demos only" in text
    assert "existed before" in text
    for username in DEMO_USERNAMES:
        assert f"  {username} " in text


def test_reset_removes_all_closeout_data(demo: DemoReport, db: None) -> None:
    outsider = User.objects.create_user(username="someone", password="own-secret-1")
    with transaction.atomic():
        demo_reset()
    assert not Document.objects.exists() and not BusinessEvent.objects.exists()
    assert not AuditEvent.objects.exists() and not Grant.objects.exists()
    assert not SweepRun.objects.exists() and not OrgUnit.objects.exists()
    assert not User.objects.filter(username__in=DEMO_USERNAMES).exists()
    assert User.objects.filter(pk=outsider.pk).exists()
    head = AuditChainHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (0, GENESIS_HASH)
    assert audit_chain_verify().intact


def test_two_companies_share_purchase_order_numbers(demo: DemoReport, db: None) -> None:
    """The CNY demo company and the USD company fed from AdventureWorks: the US orders are in
    dollars at rate 1, and some of their numbers are numbers of the Chinese company too."""
    from closeout.core.companies import companies

    assert [(c.code, c.base_currency) for c in companies()] == [("AWUS", "USD"), ("DEMO", "CNY")]
    us = Document.objects.filter(company__unit__code="AWUS")
    assert us.count() == 8 and set(us.values_list("currency", "exchange_rate")) == {("USD", 1)}
    shared = set(us.values_list("number", flat=True)) & set(
        Document.objects.filter(company__unit__code="DEMO").values_list("number", flat=True)
    )
    assert shared
    buyer_us = User.objects.get(username="buyer_us")
    from closeout.access.selectors import documents_visible_to

    seen = Document.objects.filter(documents_visible_to(buyer_us, "close.direct"))
    assert set(seen.values_list("company__unit__code", flat=True)) == {"AWUS"}


def test_one_purchase_order_is_closed_for_receiving_with_invoicing_open(
    demo: DemoReport, db: None
) -> None:
    from closeout.closing.dimensions import lines_with_dimensions

    [label] = demo.scenarios[Scenario.CLOSED_FOR_RECEIVING]
    document = _doc(label)
    assert document.close_state == CloseState.OPEN
    states = [dims for _line, dims in lines_with_dimensions(document, document.lines.all())]
    assert {"receiving": "closed", "invoicing": "open", "payment": "open"} in states
    # The receiving close accepted the shortfall: "received" no longer holds the document.
    assert "received" not in _failing(close_checklist_for(document)), label


def test_one_batch_has_been_undone(demo: DemoReport, db: None) -> None:
    from closeout.batches.models import BatchAction, BatchJob, BatchState

    undo = BatchJob.objects.select_related("undoes").get(action=BatchAction.UNDO)
    original = undo.undoes
    assert original is not None and original.action == BatchAction.CLOSE
    assert (original.state, undo.state) == (BatchState.DONE, BatchState.DONE)
    closed = original.items.filter(outcome="closed").count()
    assert closed >= 1 and undo.succeeded == undo.total == closed
    reopened = Document.objects.filter(pk__in=undo.items.values("document_id"))
    assert set(reopened.values_list("close_state", flat=True)) == {CloseState.OPEN}


def test_the_us_company_has_its_own_reason_code_and_webhook(demo: DemoReport, db: None) -> None:
    from closeout.closing.models import ReasonAction, ReasonCode
    from closeout.closing.reasons import reason_choices
    from closeout.core.models import Company
    from closeout.notifications.models import WebhookEndpoint

    us = Company.objects.get(base_currency="USD")
    own = ReasonCode.objects.get(code="us_tariff_change")
    assert own.company == us
    assert own in reason_choices(ReasonAction.CLOSE, us.pk)
    others = Company.objects.exclude(pk=us.pk)
    assert all(own not in reason_choices(ReasonAction.CLOSE, c.pk) for c in others)
    assert WebhookEndpoint.objects.get(company=us).name == "US ERP (demo)"
