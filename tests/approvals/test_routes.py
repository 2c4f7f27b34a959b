"""Which approval route a request takes (S9, S12): every condition of a route, priority,
inactive routes, the closed-period rule for reopens, and the steps kept with the request."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.access.models import Role
from closeout.approvals.decide import close_request_approve
from closeout.approvals.models import AccountingPeriod, ApprovalRoute, ApprovalStep, RequestState
from closeout.approvals.selectors import (
    period_is_closed,
    route_choose,
    route_for_close,
    route_for_reopen,
)
from closeout.approvals.submit import reopen_request_submit
from closeout.closing.selectors import close_checklist_for
from closeout.closing.services import document_reopen
from closeout.core.errors import InvalidTransition, PermissionDenied
from closeout.documents.models import CloseState, Document
from tests.approvals.conftest import TWO_STEPS, closed_po, fresh, make_route, short_po, submit_close
from tests.factories import PO, SO, Org, make_document, ready_document


def choose(
    document: Document, *, action: str = "close", exception: bool = False, open_value: int = 0
) -> str | None:
    route = route_choose(
        document=document, action=action, exception=exception, open_value=Decimal(open_value)
    )
    return route.name if route is not None else None


def test_no_route_configured_means_no_approval(org: Org) -> None:
    assert ApprovalRoute.objects.count() == 0  # a fresh install closes directly
    assert choose(make_document(PO, org.team_a1)) is None


def test_document_type_specific_or_any(org: Org) -> None:
    make_route("PO only", doc_type=PO)
    make_route("any type", priority=200)
    assert choose(make_document(PO, org.team_a1)) == "PO only"
    assert choose(make_document(SO, org.team_a1)) == "any type"


def test_action_close_or_reopen(org: Org) -> None:
    make_route("close route", action="close")
    make_route("reopen route", action="reopen", steps=(("finance", "财务"),))
    document = make_document(PO, org.team_a1)
    assert choose(document, action="close") == "close route"
    assert choose(document, action="reopen") == "reopen route"


@pytest.mark.parametrize(
    ("condition", "exception", "matches"),
    [
        ("exception", True, True),
        ("exception", False, False),
        ("normal", True, False),
        ("normal", False, True),
        ("any", True, True),
        ("any", False, True),
    ],
)
def test_exception_condition(org: Org, condition: str, exception: bool, matches: bool) -> None:
    make_route("r", condition=condition)
    chosen = choose(make_document(PO, org.team_a1), exception=exception)
    assert chosen == ("r" if matches else None)


@pytest.mark.parametrize(
    ("open_value", "matches"),
    [
        ("49999.9999", False),
        ("50000", True),  # lower bound inclusive
        ("99999.9999", True),
        ("100000", False),  # upper bound exclusive
    ],
)
def test_open_value_band(org: Org, open_value: str, matches: bool) -> None:
    make_route("band", min_open_value=Decimal(50000), max_open_value=Decimal(100000))
    route = route_choose(
        document=make_document(PO, org.team_a1),
        action="close",
        exception=False,
        open_value=Decimal(open_value),
    )
    assert (route is not None) is matches


@pytest.mark.parametrize(
    ("total", "matches"),
    [("9999.99", False), ("10000", True), ("19999.99", True), ("20000", False)],
)
def test_document_total_band(org: Org, total: str, matches: bool) -> None:
    make_route("total band", min_total=Decimal(10000), max_total=Decimal(20000))
    document = make_document(PO, org.team_a1, ((1, total),))
    assert document.total_amount_company == Decimal(total)
    assert (choose(document) == "total band") is matches


def test_total_band_uses_company_currency(org: Org) -> None:
    make_route("over 10k", min_total=Decimal(10000))
    usd = make_document(PO, org.team_a1, ((1, 2000),), exchange_rate=Decimal(7))
    assert usd.total_amount_company == Decimal(14000)
    assert choose(usd) == "over 10k"


def test_open_value_band_through_the_close_preview(org: Org) -> None:
    make_route("big", condition="exception", min_open_value=Decimal(50000))
    big, small = short_po(org.team_a1), short_po(org.team_a1, received=600)
    for document, expected in ((big, "big"), (small, None)):
        checklist = close_checklist_for(document)
        route = route_for_close(document, checklist=checklist, line_nos=None)
        assert (route.name if route else None) == expected


@pytest.mark.parametrize(
    ("unit", "matches"),
    [("team_a1", True), ("dept_a", True), ("dept_b", False), ("company", False)],
)
def test_org_unit_subtree(org: Org, unit: str, matches: bool) -> None:
    make_route("dept A", org_unit=org.dept_a)
    assert (choose(make_document(PO, getattr(org, unit))) == "dept A") is matches


def test_priority_order_then_id(org: Org) -> None:
    make_route("late", priority=50)
    make_route("early", priority=10)
    make_route("early too", priority=10)
    assert choose(make_document(PO, org.team_a1)) == "early"


def test_first_matching_route_by_priority_skips_non_matching(org: Org) -> None:
    make_route("dept B first", org_unit=org.dept_b, priority=1)
    make_route("exception second", condition="exception", priority=2)
    make_route("fallback", priority=3)
    document = make_document(PO, org.team_a1)
    assert choose(document, exception=True) == "exception second"
    assert choose(document, exception=False) == "fallback"


def test_inactive_routes_and_routes_without_steps_are_ignored(org: Org) -> None:
    make_route("off", priority=1, active=False)
    make_route("empty", priority=2, steps=())
    make_route("on", priority=3)
    assert choose(make_document(PO, org.team_a1)) == "on"
    ApprovalRoute.objects.filter(name="on").update(active=False)
    assert choose(make_document(PO, org.team_a1)) is None


# --- closed accounting periods ---------------------------------------------------------------


def _close_the_period_of(document: Document) -> AccountingPeriod:
    day = document.close_date
    assert day is not None
    return AccountingPeriod.objects.create(
        name=f"{day:%Y-%m}", start=day.replace(day=1), end=day + timedelta(days=1), closed=True
    )


def test_period_is_closed_boundaries(db: None) -> None:
    AccountingPeriod.objects.create(
        name="2024-01", start=date(2024, 1, 1), end=date(2024, 1, 31), closed=True
    )
    AccountingPeriod.objects.create(
        name="2024-02", start=date(2024, 2, 1), end=date(2024, 2, 29), closed=False
    )
    assert period_is_closed(date(2024, 1, 1))
    assert period_is_closed(date(2024, 1, 31))
    assert not period_is_closed(date(2023, 12, 31))
    assert not period_is_closed(date(2024, 2, 1))
    assert not period_is_closed(None)


def test_reopen_in_a_closed_period_takes_the_finance_route(
    org: Org, operator: User, supervisor: User
) -> None:
    make_route("主管反结案 supervisor reopen", action="reopen", priority=1)
    make_route(
        "关账期间 closed period",
        action="reopen",
        steps=(("finance", "财务"),),
        for_closed_period=True,
        priority=900,
        condition="exception",  # whatever else applies: bands and conditions are not consulted
        min_open_value=Decimal(10**9),
    )
    document = closed_po(org.team_a1, operator)
    assert choose(document, action="reopen") == "主管反结案 supervisor reopen"

    period = _close_the_period_of(document)
    assert period_is_closed(document.close_date)
    route = route_for_reopen(document)
    assert route is not None and route.name == "关账期间 closed period"
    # The closed-period route is never taken for a close, nor for a reopen in an open period.
    assert choose(document, action="close") is None
    period.closed = False
    period.save()
    assert choose(document, action="reopen") == "主管反结案 supervisor reopen"
    period.closed = True
    period.save()

    # A direct reopen is refused; the request goes to finance.
    with pytest.raises(InvalidTransition, match="closed accounting period"):
        document_reopen(actor=supervisor, document=document, reason_code="wrong_close")
    request = reopen_request_submit(
        actor=operator, document=document, reason_code="wrong_close", remark="mistake"
    )
    assert [s["role"] for s in request.steps] == ["finance"]
    assert fresh(document).close_state == CloseState.REOPEN_PENDING


def test_closed_period_routes_keep_their_type_and_organisation_scope(
    org: Org, operator: User
) -> None:
    make_route("po reopen", action="reopen", doc_type=PO)
    make_route(
        "period: sales orders", action="reopen", for_closed_period=True, doc_type=SO, priority=1
    )
    make_route(
        "period: dept B", action="reopen", for_closed_period=True, org_unit=org.dept_b, priority=2
    )
    make_route(
        "period: inactive", action="reopen", for_closed_period=True, active=False, priority=3
    )
    document = closed_po(org.team_a1, operator)
    _close_the_period_of(document)
    assert choose(document, action="reopen") == "po reopen"
    make_route(
        "period: dept A", action="reopen", for_closed_period=True, org_unit=org.dept_a, priority=4
    )
    assert choose(document, action="reopen") == "period: dept A"


def test_direct_reopen_in_an_open_period_still_works(
    org: Org, operator: User, supervisor: User
) -> None:
    document = closed_po(org.team_a1, operator)
    AccountingPeriod.objects.create(
        name="now",
        start=timezone.localdate() - timedelta(days=5),
        end=timezone.localdate() + timedelta(days=5),
        closed=False,
    )
    document_reopen(actor=supervisor, document=document, reason_code="wrong_close")
    assert fresh(document).close_state == CloseState.OPEN


# --- the route is kept with the request ------------------------------------------------------


def test_request_keeps_the_steps_it_was_submitted_with(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    route = make_route("sup only")
    request = submit_close(operator, short_po(org.team_a1))
    snapshot = list(request.steps)
    assert snapshot == [{"order": 1, "name": "主管审批", "role": "supervisor", "sla_hours": 24}]

    # The configuration changes while the request is in flight.
    step = route.steps.get()
    step.role = Role.objects.get(code="finance")
    step.name = "财务审批"
    step.save()
    ApprovalStep.objects.create(
        route=route, order=2, name="总经理", role=Role.objects.get(code="admin")
    )
    route.min_total = Decimal(10**9)  # it would no longer even match
    route.save()

    request.refresh_from_db()
    assert request.steps == snapshot
    with pytest.raises(PermissionDenied, match="needs the role 'supervisor'"):
        close_request_approve(actor=finance, request=request)
    done = close_request_approve(actor=supervisor, request=request)
    assert done.state == RequestState.EXECUTED  # one step, as submitted


def test_deleting_the_route_does_not_strand_the_request(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    route = make_route("two", steps=TWO_STEPS)
    request = submit_close(operator, short_po(org.team_a1))
    request = close_request_approve(actor=supervisor, request=request)
    route.delete()
    request.refresh_from_db()
    assert request.route is None
    assert close_request_approve(actor=finance, request=request).state == RequestState.EXECUTED


def test_resubmission_takes_the_route_chosen_now(
    org: Org, operator: User, supervisor: User, finance: User
) -> None:
    from closeout.approvals.decide import close_request_reject
    from closeout.approvals.submit import close_request_resubmit

    route = make_route("sup")
    request = submit_close(operator, short_po(org.team_a1))
    request = close_request_reject(actor=supervisor, request=request, comment="more")
    ApprovalStep.objects.create(
        route=route, order=2, name="财务", role=Role.objects.get(code="finance")
    )
    request = close_request_resubmit(actor=operator, request=request, remark="more detail")
    assert [s["role"] for s in request.steps] == ["supervisor", "finance"]


def test_ready_document_matches_normal_routes_only(org: Org) -> None:
    make_route("exceptions", condition="exception")
    ready = ready_document(PO, org.team_a1)
    checklist = close_checklist_for(ready)
    assert checklist.exceptions == []
    assert route_for_close(ready, checklist=checklist, line_nos=None) is None
