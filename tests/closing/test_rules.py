"""Every rule of every document type at and around its tolerance boundary, and the property that
a rule has one definition: the checklist's verdict for a rule is exactly whether the document is
in `documents_failing(...)`, and the checklist is all-pass exactly when the document is in
`documents_ready_to_close(...)`."""

from decimal import Decimal

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from closeout.closing.models import Severity
from closeout.closing.policies import policy_for
from closeout.closing.selectors import (
    Checklist,
    RuleCheck,
    close_checklist_for,
    documents_failing,
    documents_ready_to_close,
)
from closeout.closing.services import document_close
from closeout.documents.models import Document, EventKind
from tests.factories import (
    AP,
    AR,
    PO,
    PS,
    SC,
    SO,
    Org,
    complete,
    make_document,
    post,
    ready_document,
    rolled_back,
    set_policy,
)

pytestmark = pytest.mark.django_db

STEP = Decimal("0.0001")
# Below, at or above a boundary by the smallest quantity or amount the database stores.
DELTAS = st.sampled_from([-STEP, Decimal(0), STEP])


# Parametrised properties run fewer examples each, so the whole file stays fast.
per_case = settings(max_examples=12)
per_type = settings(max_examples=6)
per_rule = settings(max_examples=15)


def hundredths(lo: int, hi: int) -> st.SearchStrategy[Decimal]:
    return st.integers(lo, hi).map(lambda n: Decimal(n) / 100)


def checked(document: Document, *, for_auto: bool = False) -> Checklist:
    """The checklist, after asserting it agrees rule by rule with the database filters."""
    checklist = close_checklist_for(document, for_auto=for_auto)
    for check in checklist.checks:
        in_failing = (
            documents_failing(document.doc_type, check.rule, checklist.policy)
            .filter(pk=document.pk)
            .exists()
        )
        assert in_failing == (not check.passed), (check.rule.code, check.passed, in_failing)
    ready = documents_ready_to_close(document.doc_type, for_auto=for_auto).filter(pk=document.pk)
    assert ready.exists() == all(c.passed for c in checklist.checks), checklist.verdict
    assert (checklist.verdict == "ready") == ready.exists()
    return checklist


def same(measured: object, expected: Decimal | int) -> bool:
    """Measured values computed in SQLite pass through binary floats; stored ones do not."""
    return abs(Decimal(str(measured)) - Decimal(expected)) < Decimal("1e-9")


def rule(checklist: Checklist, code: str) -> RuleCheck:
    found = [c for c in checklist.checks if c.rule.code == code]
    assert len(found) == 1, f"{code} not in {[c.rule.code for c in checklist.checks]}"
    return found[0]


def codes(checklist: Checklist) -> set[str]:
    return {c.rule.code for c in checklist.checks}


# --- purchase and sales orders: fulfilment --------------------------------------------------

FULFIL = pytest.mark.parametrize(
    ("doc_type", "under_code", "over_code", "kind"),
    [
        (PO, "received", "not_over_received", EventKind.RECEIPT),
        (SO, "shipped", "not_over_shipped", EventKind.SHIPMENT),
    ],
)


@FULFIL
@per_case
@given(planned=st.integers(1, 5000), under=hundredths(0, 5000), delta=DELTAS)
@example(planned=100, under=Decimal(2), delta=Decimal(0))  # the default 2%: 98 of 100 passes
@example(planned=100, under=Decimal(2), delta=-STEP)  # 97.9999 of 100 fails
def test_fulfilled_under_tolerance_boundary(
    org: Org,
    doc_type: str,
    under_code: str,
    over_code: str,
    kind: str,
    planned: int,
    under: Decimal,
    delta: Decimal,
) -> None:
    fulfilled = planned * (100 - under) / 100 + delta
    assume(fulfilled >= 0)
    with rolled_back():
        set_policy(doc_type, under_qty_pct=under)
        doc = make_document(doc_type, org.dept_a, [(planned, 3)])
        if fulfilled:
            post(doc, kind, 1, fulfilled)
        check = rule(checked(doc), under_code)
        assert check.passed == (delta >= 0)
        assert check.severity == Severity.EXCEPTION
        assert check.failing_lines == ([] if delta >= 0 else [1])
        assert check.line_values[1]["fulfilled"] == fulfilled
        assert check.line_values[1]["planned"] == planned


@FULFIL
@per_case
@given(planned=st.integers(1, 5000), over=hundredths(0, 5000), delta=DELTAS)
def test_fulfilled_over_tolerance_boundary(
    org: Org,
    doc_type: str,
    under_code: str,
    over_code: str,
    kind: str,
    planned: int,
    over: Decimal,
    delta: Decimal,
) -> None:
    fulfilled = planned * (100 + over) / 100 + delta
    with rolled_back():
        set_policy(doc_type, over_qty_pct=over)
        doc = make_document(doc_type, org.dept_a, [(planned, 3)])
        post(doc, kind, 1, fulfilled)
        checklist = checked(doc)
        assert rule(checklist, over_code).passed == (delta <= 0)
        if delta >= 0:
            assert rule(checklist, under_code).passed  # over-delivery is never short


# --- three-way match: invoice quantity and amount -------------------------------------------


@pytest.mark.parametrize("doc_type", [PO, SO])
@per_case
@given(
    fulfilled=st.integers(1, 2000),
    pct=hundredths(0, 1000),
    sign=st.sampled_from([1, -1]),
    delta=DELTAS,
)
def test_invoice_qty_match_boundary(
    org: Org, doc_type: str, fulfilled: int, pct: Decimal, sign: int, delta: Decimal
) -> None:
    distance = fulfilled * pct / 100 + delta
    assume(distance >= 0)  # |invoiced − fulfilled| is the tolerance ± one step
    invoiced = fulfilled + sign * distance
    assume(invoiced >= 0)
    kind = EventKind.RECEIPT if doc_type == PO else EventKind.SHIPMENT
    with rolled_back():
        set_policy(doc_type, match_qty_pct=pct)
        doc = make_document(doc_type, org.dept_a, [(fulfilled, 2)])
        post(doc, kind, 1, fulfilled)
        post(doc, EventKind.INVOICE, 1, invoiced, 0)
        check = rule(checked(doc), "invoice_qty_match")
        assert check.passed == (delta <= 0)


@pytest.mark.parametrize("doc_type", [PO, SO])
@per_case
@given(
    fulfilled=st.integers(1, 500),
    price=st.integers(1, 200),
    tol_abs=hundredths(0, 10000),
    pct=hundredths(0, 1000),
    sign=st.sampled_from([1, -1]),
    delta=DELTAS,
)
@example(fulfilled=10, price=100, tol_abs=Decimal(1), pct=Decimal("0.5"), sign=1, delta=STEP)
@example(fulfilled=1, price=50, tol_abs=Decimal(1), pct=Decimal("0.5"), sign=-1, delta=0)
def test_invoice_amount_match_boundary(
    org: Org,
    doc_type: str,
    fulfilled: int,
    price: int,
    tol_abs: Decimal,
    pct: Decimal,
    sign: int,
    delta: Decimal,
) -> None:
    value = Decimal(fulfilled * price)
    tolerance = max(tol_abs, value * pct / 100)
    assume(tolerance + delta >= 0)
    invoiced = value + sign * (tolerance + delta)
    assume(invoiced >= 0)
    kind = EventKind.RECEIPT if doc_type == PO else EventKind.SHIPMENT
    with rolled_back():
        set_policy(doc_type, amount_tolerance_abs=tol_abs, amount_tolerance_pct=pct)
        doc = make_document(doc_type, org.dept_a, [(fulfilled, price)])
        post(doc, kind, 1, fulfilled)
        post(doc, EventKind.INVOICE, 1, fulfilled, invoiced)
        check = rule(checked(doc), "invoice_amount_match")
        assert check.passed == (delta <= 0)
        assert check.line_values[1]["invoiced_amount"] == invoiced


@pytest.mark.parametrize(("doc_type", "code"), [(PO, "paid"), (SO, "collected")])
@per_case
@given(invoiced=hundredths(1, 1_000_000), tol_abs=hundredths(0, 5000), delta=DELTAS)
def test_settled_boundary(
    org: Org, doc_type: str, code: str, invoiced: Decimal, tol_abs: Decimal, delta: Decimal
) -> None:
    settled = invoiced - tol_abs - delta  # open balance = tolerance + delta
    assume(settled >= 0)
    with rolled_back():
        set_policy(doc_type, amount_tolerance_abs=tol_abs)
        doc = make_document(doc_type, org.dept_a, [(1, invoiced)])
        post(doc, EventKind.INVOICE, 1, 1, invoiced)
        if settled:
            post(doc, EventKind.PAYMENT, 1, 0, settled)
        assert rule(checked(doc), code).passed == (delta <= 0)


def test_paid_can_be_switched_off_by_policy(org: Org) -> None:
    doc = make_document(PO, org.dept_a, [(10, 5)])
    post(doc, EventKind.RECEIPT, 1, 10)
    post(doc, EventKind.INVOICE, 1, 10, 50)
    assert checked(doc).verdict == "exception"
    assert not rule(checked(doc), "paid").passed
    set_policy(PO, rule_settings={"paid": {"enabled": False}})
    checklist = checked(doc)
    assert "paid" not in codes(checklist)
    assert checklist.verdict == "ready"


# --- sales order returns ----------------------------------------------------------------------


@per_rule
@given(returned=st.integers(1, 50), credited=st.integers(0, 60))
def test_sales_order_open_returns(org: Org, returned: int, credited: int) -> None:
    with rolled_back():
        doc = make_document(SO, org.dept_b, [(100, 2)])
        post(doc, EventKind.SHIPMENT, 1, 100)
        post(doc, EventKind.INVOICE, 1, 100, 200)
        post(doc, EventKind.RETURN, 1, returned)
        if credited:
            post(doc, EventKind.CREDIT_NOTE, 1, credited, credited * 2)
        check = rule(checked(doc), "no_open_returns")
        assert check.severity == Severity.BLOCKING
        assert check.passed == (credited >= returned)
        assert same(check.line_values[1]["open_returns"], max(returned - credited, 0))
        doc.lines.get().refresh_from_db()
        assert doc.lines.get().fulfilled_qty == 100 - returned


# --- stock count --------------------------------------------------------------------------------


def test_stock_count_every_line_counted(org: Org) -> None:
    doc = make_document(SC, org.dept_a, [(10, 1), (20, 1)])
    post(doc, EventKind.COUNT_RESULT, 1, 10)
    check = rule(checked(doc), "all_counted")
    assert (check.passed, check.severity, check.failing_lines) == (False, Severity.BLOCKING, [2])
    post(doc, EventKind.COUNT_RESULT, 2, 0)  # counted zero is a count
    assert rule(checked(doc), "all_counted").passed


@per_rule
@given(
    book=st.integers(0, 1000),
    counted=st.integers(0, 2_000_000).map(lambda n: Decimal(n) / 1000),
    delta=DELTAS,
)
def test_stock_count_variance_posted(org: Org, book: int, counted: Decimal, delta: Decimal) -> None:
    adjustment = counted - book + delta
    with rolled_back():
        doc = make_document(SC, org.dept_a, [(book, 1)])
        post(doc, EventKind.COUNT_RESULT, 1, counted)
        if adjustment:
            post(doc, EventKind.STOCK_ADJUSTMENT, 1, adjustment)
        check = rule(checked(doc), "variance_posted")
        assert check.severity == Severity.BLOCKING
        assert check.passed == (delta == 0)
        assert same(check.line_values[1]["variance"], counted - book)


@per_rule
@given(book=st.integers(0, 1000), delta=DELTAS)
def test_stock_count_no_negative_stock(org: Org, book: int, delta: Decimal) -> None:
    adjustment = -book + delta
    with rolled_back():
        doc = make_document(SC, org.dept_a, [(book, 1)])
        post(doc, EventKind.COUNT_RESULT, 1, max(book + adjustment, Decimal(0)))
        if adjustment:
            post(doc, EventKind.STOCK_ADJUSTMENT, 1, adjustment)
        check = rule(checked(doc), "no_negative_stock")
        assert check.passed == (delta >= 0)
        assert same(check.line_values[1]["resulting"], book + adjustment)


@per_rule
@given(
    variance=hundredths(1, 10000),
    price=st.integers(1, 100),
    below=st.booleans(),
    other=st.integers(0, 30),
    delta=DELTAS,
)
def test_stock_count_variance_value_limit(
    org: Org, variance: Decimal, price: int, below: bool, other: int, delta: Decimal
) -> None:
    """Σ |counted − book| × price over the lines against the limit, counting surplus and
    shortage alike."""
    total = variance * price + other * 3
    limit = total - delta  # the total is above the limit exactly when delta > 0
    assume(limit >= 0)
    with rolled_back():
        set_policy(SC, variance_value_limit=limit)
        doc = make_document(SC, org.dept_a, [(1000, price), (50, 3)])
        post(doc, EventKind.COUNT_RESULT, 1, 1000 - variance if below else 1000 + variance)
        post(doc, EventKind.COUNT_RESULT, 2, 50 + other)
        check = rule(checked(doc), "variance_value")
        assert check.severity == Severity.EXCEPTION
        assert check.passed == (delta <= 0)
        assert same(check.measured["variance_value"], total)


# --- receivable and payable -------------------------------------------------------------------


@pytest.mark.parametrize("doc_type", [AR, AP])
@per_case
@given(
    invoiced=hundredths(1, 1_000_000),
    write_off=hundredths(0, 5000),
    split=st.booleans(),
    delta=DELTAS,
)
def test_balance_within_write_off(
    org: Org, doc_type: str, invoiced: Decimal, write_off: Decimal, split: bool, delta: Decimal
) -> None:
    settled = invoiced - write_off - delta
    assume(settled >= 0)
    with rolled_back():
        set_policy(doc_type, write_off_amount=write_off)
        # The balance is summed over the lines: a second, fully settled line changes nothing.
        lines = [(1, invoiced), (1, 7)] if split else [(1, invoiced)]
        doc = make_document(doc_type, org.dept_b, lines)
        post(doc, EventKind.INVOICE, 1, 1, invoiced)
        if settled:
            post(doc, EventKind.PAYMENT, 1, 0, settled)
        if split:
            post(doc, EventKind.INVOICE, 2, 1, 7)
            post(doc, EventKind.PAYMENT, 2, 0, 7)
        check = rule(checked(doc), "balance_within_write_off")
        assert check.severity == Severity.EXCEPTION
        assert check.passed == (delta <= 0)
        assert same(check.measured["open_balance"], invoiced - settled)


@pytest.mark.parametrize("doc_type", [AR, AP])
@per_case
@given(
    order=st.integers(1, 100_000),
    tol_abs=hundredths(0, 10000),
    pct=hundredths(0, 500),
    sign=st.sampled_from([1, -1]),
    delta=DELTAS,
)
def test_invoice_matches_order(
    org: Org,
    doc_type: str,
    order: int,
    tol_abs: Decimal,
    pct: Decimal,
    sign: int,
    delta: Decimal,
) -> None:
    tolerance = max(tol_abs, order * pct / 100)
    assume(tolerance + delta >= 0)
    invoiced = order + sign * (tolerance + delta)
    assume(invoiced >= 0)
    with rolled_back():
        set_policy(doc_type, amount_tolerance_abs=tol_abs, amount_tolerance_pct=pct)
        doc = make_document(doc_type, org.dept_b, [(1, order)])
        if invoiced:
            post(doc, EventKind.INVOICE, 1, 1, invoiced)
        assert rule(checked(doc), "invoice_matches_order").passed == (delta <= 0)


# --- project stage ------------------------------------------------------------------------------


@per_rule
@given(tasks=st.integers(1, 40), done=st.integers(0, 45))
def test_project_tasks_done(org: Org, tasks: int, done: int) -> None:
    with rolled_back():
        doc = make_document(PS, org.dept_a, [(tasks, 100)])
        if done:
            post(doc, EventKind.TASK_COMPLETION, 1, done)
        check = rule(checked(doc), "tasks_done")
        assert check.severity == Severity.EXCEPTION
        assert check.passed == (done >= tasks)


def test_project_costs_posted_and_acceptance(org: Org) -> None:
    doc = make_document(PS, org.dept_a, [(2, 100)])
    post(doc, EventKind.TASK_COMPLETION, 1, 2)
    cost = post(doc, EventKind.COST_POSTING, 1, 0, 150, pending=True)
    checklist = checked(doc)
    costs = rule(checklist, "costs_posted")
    assert (costs.passed, costs.severity) == (False, Severity.BLOCKING)
    assert costs.measured["pending_costs"] is True
    # A pending cost posting is the costs rule's business, not the events rule's.
    assert rule(checklist, "events_settled").passed
    acceptance = rule(checklist, "acceptance_recorded")
    assert (acceptance.passed, acceptance.severity) == (False, Severity.EXCEPTION)
    assert checklist.verdict == "blocked"

    from closeout.documents.services import event_confirm

    event_confirm(actor=None, event_id=cost.event.pk)
    post(doc, EventKind.ACCEPTANCE, None)
    checklist = checked(doc)
    assert rule(checklist, "costs_posted").passed
    assert rule(checklist, "acceptance_recorded").passed
    assert checklist.verdict == "ready"


@per_rule
@given(budget=st.integers(1, 100_000), tol=hundredths(0, 5000), delta=DELTAS)
def test_project_cost_within_budget(org: Org, budget: int, tol: Decimal, delta: Decimal) -> None:
    cost = budget * (100 + tol) / 100 + delta
    with rolled_back():
        set_policy(PS, budget_tolerance_pct=tol)
        doc = make_document(PS, org.dept_a, [(1, budget)])
        post(doc, EventKind.TASK_COMPLETION, 1, 1)
        post(doc, EventKind.COST_POSTING, 1, 0, cost)
        post(doc, EventKind.ACCEPTANCE, None)
        checklist = checked(doc)
        check = rule(checklist, "cost_within_budget")
        assert check.severity == Severity.WARNING
        assert check.passed == (delta <= 0)
        # A warning alone never stops a close.
        assert checklist.verdict == ("ready" if delta <= 0 else "warning")


# --- rules every type shares --------------------------------------------------------------------

ALL_TYPES = pytest.mark.parametrize("doc_type", [PO, SO, SC, AR, AP, PS])


@ALL_TYPES
def test_events_settled_pending_and_quarantined(
    org: Org, supervisor: object, doc_type: str
) -> None:
    from closeout.documents.services import event_confirm

    doc = ready_document(doc_type, org.dept_a, [(5, 4), (5, 4)])
    assert checked(doc).verdict == "ready"
    kind = {
        PO: EventKind.INVOICE,
        SO: EventKind.INVOICE,
        SC: EventKind.STOCK_ADJUSTMENT,
        AR: EventKind.INVOICE,
        AP: EventKind.INVOICE,
        PS: EventKind.TASK_COMPLETION,
    }[doc_type]
    pending = post(doc, kind, 1, 0, 0, pending=True)
    check = rule(checked(doc), "events_settled")
    assert (check.passed, check.severity) == (False, Severity.BLOCKING)
    assert check.measured["pending"] == 1
    event_confirm(actor=None, event_id=pending.event.pk)
    assert rule(checked(doc), "events_settled").passed

    # A quarantined event (arrived for a line already closed) also keeps the document open.
    document_close(actor=supervisor, document=doc, reason_code="completed", line_nos=[2])  # type: ignore[arg-type]
    post(doc, kind, 2, 0, 0)
    check = rule(checked(doc), "events_settled")
    assert not check.passed
    assert check.measured["quarantined"] == 1


@ALL_TYPES
@per_type
@given(grace=st.integers(0, 40), offset=st.sampled_from([-1, 1]))
def test_grace_period_only_in_the_automatic_checklist(
    org: Org, doc_type: str, grace: int, offset: int
) -> None:
    days_ago = grace + offset
    assume(days_ago >= 0)
    with rolled_back():
        set_policy(doc_type, grace_days=grace)
        doc = complete(make_document(doc_type, org.dept_a), days_ago=days_ago)
        assert "grace_period" not in codes(checked(doc, for_auto=False))
        assert checked(doc, for_auto=False).verdict == "ready"
        check = rule(checked(doc, for_auto=True), "grace_period")
        assert check.passed == (days_ago > grace)


def test_grace_period_counts_from_creation_without_activity(org: Org) -> None:
    set_policy(PS, grace_days=3, rule_settings={"tasks_done": {"enabled": False}})
    doc = make_document(PS, org.dept_a, [(0, 0)])
    assert not rule(checked(doc, for_auto=True), "grace_period").passed
    set_policy(PS, grace_days=0)
    assert rule(checked(doc, for_auto=True), "grace_period").passed


def test_line_on_hold_blocks_the_whole_document(org: Org, operator: object) -> None:
    from closeout.closing.services import document_hold

    doc = ready_document(PO, org.dept_a, [(1, 1), (1, 1)])
    document_hold(actor=operator, document=doc, reason="disputed", line_nos=[2])  # type: ignore[arg-type]
    check = rule(checked(doc), "no_line_on_hold")
    assert (check.passed, check.severity, check.failing_lines) == (False, Severity.BLOCKING, [2])


# --- policy switches ----------------------------------------------------------------------------


def short_po(org_unit: object, received: int = 90) -> Document:
    """A PO received 90 of 100, invoiced and paid for what arrived: only `received` fails."""
    doc = make_document(PO, org_unit, [(100, 1)])  # type: ignore[arg-type]
    post(doc, EventKind.RECEIPT, 1, received)
    post(doc, EventKind.INVOICE, 1, received, received)
    post(doc, EventKind.PAYMENT, 1, 0, received)
    return doc


def test_disabled_rule_is_not_evaluated(org: Org) -> None:
    doc = short_po(org.dept_a)
    assert checked(doc).verdict == "exception"
    set_policy(PO, rule_settings={"received": {"enabled": False}})
    checklist = checked(doc)
    assert "received" not in codes(checklist)
    assert checklist.verdict == "ready"
    assert documents_ready_to_close(PO).filter(pk=doc.pk).exists()


def test_severity_override_changes_the_verdict(org: Org, operator: object) -> None:
    from closeout.core.errors import RuleFailed

    doc = short_po(org.dept_a)
    set_policy(PO, rule_settings={"received": {"severity": "blocking"}})
    checklist = checked(doc)
    assert rule(checklist, "received").severity == Severity.BLOCKING
    assert checklist.verdict == "blocked"
    with pytest.raises(RuleFailed) as refused:
        document_close(
            actor=operator,  # type: ignore[arg-type]
            document=doc,
            reason_code="short_delivery_accepted",
            remark="supplier stopped",
        )
    assert refused.value.details["rules"] == ["received"]
    set_policy(PO, rule_settings={"received": {"severity": "warning"}})
    assert checked(doc).verdict == "warning"


def test_organisation_policy_overrides_the_default_in_its_subtree(org: Org) -> None:
    default = policy_for(PO, org.dept_a)
    assert default.org_unit is None
    set_policy(PO, org.dept_a, under_qty_pct=Decimal(15), over_qty_pct=5, grace_days=0)
    in_a, in_team, in_b = short_po(org.dept_a), short_po(org.team_a1), short_po(org.dept_b)
    assert policy_for(PO, org.team_a1).org_unit == org.dept_a
    assert policy_for(PO, org.dept_b).org_unit is None
    assert checked(in_a).verdict == "ready"
    assert checked(in_team).verdict == "ready"
    assert checked(in_b).verdict == "exception"
    ready = set(documents_ready_to_close(PO).values_list("pk", flat=True))
    assert ready == {in_a.pk, in_team.pk}
    # The most specific unit wins: a stricter team policy takes its subtree back.
    set_policy(PO, org.team_a1, under_qty_pct=Decimal(5))
    assert checked(in_team).verdict == "exception"
    assert set(documents_ready_to_close(PO).values_list("pk", flat=True)) == {in_a.pk}


def test_checklist_for_some_lines_leaves_document_rules_to_the_whole_close(org: Org) -> None:
    doc = make_document(PS, org.dept_a, [(1, 10), (1, 10)])
    post(doc, EventKind.TASK_COMPLETION, 1, 1)
    partial = close_checklist_for(doc, line_nos=[1])
    assert "acceptance_recorded" not in codes(partial)
    assert rule(partial, "tasks_done").passed
    whole = close_checklist_for(doc, line_nos=[1, 2])
    assert not rule(whole, "acceptance_recorded").passed
    assert rule(whole, "tasks_done").failing_lines == [2]
