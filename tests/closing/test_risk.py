"""Risk warnings before a manual close (S24), computed from data made through the services:
documents upserted, events posted and closes done at fixed moments of a fixed clock; and the
warnings on the close dialog, the document page, the CLI and the API, with bounded queries."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.approvals.submit import close_request_submit
from closeout.closing import risk
from closeout.closing.risk import RiskStatus, RiskWarning, close_risks_for, spread_of
from closeout.closing.selectors import close_checklist_for, close_checklist_with_risks
from closeout.closing.services import document_close
from closeout.core.models import Item, Partner
from closeout.core.services import item_get_or_create, partner_get_or_create
from closeout.documents.models import Document, EventKind
from closeout.documents.services import LineInput, document_upsert, event_post
from tests.factories import PO, SO, Org, unique, user_with_role

# 10:00 in Shanghai on a Monday: every date below is counted from here.
NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)

SetClock = Callable[[datetime], None]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SetClock:
    """Fix `timezone.now()` (every service reads the time through it) to a given moment."""

    def set_to(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    set_to(NOW)
    return set_to


@pytest.fixture
def operator(org: Org, clock: SetClock) -> User:
    """Closes directly across the company, granted long before the history starts."""
    user = user_with_role("risk-op", None)
    grant_create(
        actor=None,
        user=user,
        role=Role.objects.get(code="operator"),
        org_unit=org.company,
        valid_from=NOW - timedelta(days=800),
        reason="risk tests",
    )
    return user


@pytest.fixture
def supplier(db: None) -> Partner:
    return partner_get_or_create(code="SUP-RISK", name="风险供应商 Risky supplier")


@pytest.fixture
def bolt(db: None) -> Item:
    return item_get_or_create(code="BOLT-M8", name="螺栓 bolt M8")


def order(
    org: Org,
    partner: Partner | None,
    *,
    planned: int,
    delivered: int,
    price: int = 10,
    item: Item | None = None,
    doc_type: str = PO,
    delivered_days_before: int = 40,
) -> Document:
    """An order of one line, `delivered` of `planned` received (or shipped) at NOW minus
    `delivered_days_before` days, invoiced and paid for what arrived."""
    document = document_upsert(
        actor=None,
        doc_type=doc_type,
        number=unique("RK"),
        org_unit=org.dept_a,
        document_date=date(2025, 1, 2),
        lines=[LineInput(1, Decimal(planned), Decimal(price), item=item)],
        partner=partner,
    )
    when = NOW - timedelta(days=delivered_days_before)
    kind = EventKind.RECEIPT if doc_type == PO else EventKind.SHIPMENT
    for event_kind, qty, amount in (
        (kind, delivered, 0),
        (EventKind.INVOICE, delivered, delivered * price),
        (EventKind.PAYMENT, 0, delivered * price),
    ):
        if qty or amount:
            event_post(
                actor=None,
                document=document,
                kind=event_kind,
                external_id=unique("EV"),
                line_no=1,
                quantity=str(qty),
                amount=str(amount),
                occurred_at=when,
            )
    return document


def close_on(
    clock: SetClock, actor: User, document: Document, moment: datetime, reason: str
) -> None:
    clock(moment)
    document_close(actor=actor, document=document, reason_code=reason, remark="risk test close")
    clock(NOW)


def history(
    clock: SetClock,
    org: Org,
    actor: User,
    partner: Partner,
    *,
    closes: int,
    item: Item | None = None,
) -> None:
    """`closes` earlier short closes of the partner, one a day from 30 days ago backwards, each
    releasing 3 to 5 units of 100 (30 to 50 in value)."""
    for i in range(closes):
        document = order(org, partner, planned=100, delivered=95 + i % 3, item=item)
        close_on(clock, actor, document, NOW - timedelta(days=30 + i), "short_delivery_accepted")


def by_code(risks: list[RiskWarning], code: str) -> RiskWarning:
    found = [r for r in risks if r.code == code]
    assert len(found) == 1, [r.code for r in risks]
    return found[0]


# --- statistics ------------------------------------------------------------------------------


def test_spread_uses_median_and_mad() -> None:
    spread = spread_of([Decimal(v) for v in (10, 12, 11, 13, 9, 10, 11, 12)])
    assert spread.median == Decimal("11") and spread.mad == Decimal("1")
    # 0.6745 · (20 − 11) / 1
    assert spread.z(Decimal(20)) == Decimal("6.07")
    assert spread.percentile(Decimal(11)) == Decimal("62.5")


def test_spread_without_mad_falls_back_to_mean_deviation() -> None:
    spread = spread_of([Decimal(v) for v in (5, 5, 5, 5, 5, 5, 9, 1)])
    assert spread.mad == 0 and spread.z(Decimal(6)) is not None
    assert spread_of([Decimal(5)] * 8).z(Decimal(6)) is None


money = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)


@given(history=st.lists(money, min_size=risk.MIN_HISTORY, max_size=40), shift=money)
def test_never_flags_at_or_below_the_median_and_ignores_a_shift(
    history: list[Decimal], shift: Decimal
) -> None:
    spread = spread_of(history)
    flagged, _z = risk._outlier(spread, spread.median, risk.MIN_VALUE_EXCESS)
    assert not flagged
    moved = spread_of([v + shift for v in history])
    x = max(history) + 1
    assert moved.z(x + shift) == spread.z(x)


# --- released value and short share against history ---------------------------------------


def test_huge_release_against_partner_and_item_history_is_flagged(
    clock: SetClock, org: Org, operator: User, supplier: Partner, bolt: Item
) -> None:
    history(clock, org, operator, supplier, closes=12, item=bolt)
    big = order(org, supplier, planned=1000, delivered=100, item=bolt)
    risks = close_risks_for(big, actor=operator, reason_code="short_delivery_accepted", now=NOW)

    value = by_code(risks, "partner_released_value")
    assert value.status is RiskStatus.FLAGGED
    assert value.measured == {"released_value": Decimal("9000.0000")}
    assert value.reference["history"] == 12
    assert value.reference["median"] == Decimal("40")
    assert value.reference["mad"] == Decimal("10")
    # 0.6745 · (9000 − 40) / 10
    assert value.reference["robust_z"] == Decimal("604.35")
    assert value.reference["percentile"] == Decimal("100.0")
    assert "9,000.00" in value.message_en and "median 40.00" in value.message_en
    assert "robust z = 604.35" in value.message_en and "SUP-RISK" in value.message_zh
    assert value.action_en and value.action_zh

    share = by_code(risks, "partner_short_share")
    assert share.flagged and share.measured == {"short_share": Decimal("0.9")}
    assert "90.0%" in share.message_en

    assert by_code(risks, "item_released_value").flagged
    assert by_code(risks, "item_short_share").flagged
    assert "BOLT-M8" in by_code(risks, "item_short_share").message_en
    assert risks[0].flagged  # flagged first


def test_usual_release_is_not_flagged(
    clock: SetClock, org: Org, operator: User, supplier: Partner
) -> None:
    history(clock, org, operator, supplier, closes=12)
    usual = order(org, supplier, planned=100, delivered=96)
    risks = close_risks_for(usual, actor=operator, now=NOW)
    value = by_code(risks, "partner_released_value")
    assert value.status is RiskStatus.NORMAL and value.measured["released_value"] == 40
    assert by_code(risks, "partner_short_share").status is RiskStatus.NORMAL
    assert not [r for r in risks if r.flagged]


def test_thin_history_is_not_judged_and_says_so(
    clock: SetClock, org: Org, operator: User, supplier: Partner
) -> None:
    history(clock, org, operator, supplier, closes=3)
    big = order(org, supplier, planned=1000, delivered=100)
    value = by_code(close_risks_for(big, actor=operator, now=NOW), "partner_released_value")
    assert value.status is RiskStatus.THIN_HISTORY
    assert value.reference["history"] == 3
    assert "only 3 manual closes" in value.message_en and "fewer than 8" in value.message_en
    assert "只有 3 次" in value.message_zh


def test_history_older_than_a_year_is_not_counted(
    clock: SetClock, org: Org, operator: User, supplier: Partner
) -> None:
    for i in range(9):
        document = order(org, supplier, planned=100, delivered=96)
        close_on(
            clock, operator, document, NOW - timedelta(days=366 + i), "short_delivery_accepted"
        )
    big = order(org, supplier, planned=1000, delivered=100)
    value = by_code(close_risks_for(big, actor=operator, now=NOW), "partner_released_value")
    assert value.status is RiskStatus.THIN_HISTORY and value.reference["history"] == 0


# --- reasons that the data contradicts -------------------------------------------------------


def test_supplier_cannot_deliver_while_receipts_arrived_is_flagged(
    org: Org, operator: User, clock: SetClock
) -> None:
    recent = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    risks = close_risks_for(recent, actor=operator, reason_code="supplier_cannot_deliver", now=NOW)
    found = by_code(risks, "reason_recent_events")
    assert found.flagged
    assert found.measured == {"events": 1, "quantity": Decimal("40")}
    assert found.reference["last_days_ago"] == 3
    assert "40" in found.message_en and "3 day(s) ago" in found.message_en
    assert "供应商无法交货" in found.message_zh


def test_supplier_cannot_deliver_with_old_receipts_is_consistent(
    org: Org, operator: User, clock: SetClock
) -> None:
    old = order(org, None, planned=100, delivered=40, delivered_days_before=30)
    risks = close_risks_for(old, actor=operator, reason_code="supplier_cannot_deliver", now=NOW)
    assert by_code(risks, "reason_recent_events").status is RiskStatus.NORMAL


def test_customer_change_while_shipping_is_flagged(
    org: Org, operator: User, clock: SetClock
) -> None:
    so = order(org, None, planned=50, delivered=20, doc_type=SO, delivered_days_before=1)
    risks = close_risks_for(so, actor=operator, reason_code="customer_change", now=NOW)
    assert by_code(risks, "reason_recent_events").flagged


def test_a_reason_is_only_checked_against_events_the_type_has(
    org: Org, operator: User, clock: SetClock
) -> None:
    po = order(org, None, planned=50, delivered=20, delivered_days_before=1)
    risks = close_risks_for(po, actor=operator, reason_code="customer_change", now=NOW)
    assert not [r for r in risks if r.code.startswith("reason_")]


def test_completed_with_a_large_remainder_and_short_with_nothing_short(
    org: Org, operator: User, clock: SetClock
) -> None:
    half = order(org, None, planned=100, delivered=50)
    flagged = by_code(
        close_risks_for(half, actor=operator, reason_code="completed", now=NOW),
        "reason_open_remainder",
    )
    assert flagged.flagged and flagged.measured == {"short_share": Decimal("0.5")}
    full = order(org, None, planned=100, delivered=100)
    risks = close_risks_for(full, actor=operator, reason_code="short_delivery_accepted", now=NOW)
    assert by_code(risks, "reason_nothing_short").flagged
    consistent = close_risks_for(full, actor=operator, reason_code="completed", now=NOW)
    assert not [r for r in consistent if r.code.startswith("reason_")]


def test_goods_returned_without_any_return_is_flagged(
    org: Org, operator: User, clock: SetClock
) -> None:
    document = order(org, None, planned=10, delivered=10)
    risks = close_risks_for(document, actor=operator, reason_code="goods_returned", now=NOW)
    assert by_code(risks, "reason_no_events").flagged
    event_post(
        actor=None,
        document=document,
        kind=EventKind.RETURN,
        external_id=unique("RET"),
        line_no=1,
        quantity="10",
        occurred_at=NOW - timedelta(days=2),
    )
    risks = close_risks_for(document, actor=operator, reason_code="goods_returned", now=NOW)
    assert not [r for r in risks if r.code == "reason_no_events"]


def test_every_mapped_reason_is_a_seeded_close_reason(db: None) -> None:
    from closeout.closing.models import ReasonAction, ReasonCode

    seeded = set(
        ReasonCode.objects.filter(action=ReasonAction.CLOSE).values_list("code", flat=True)
    )
    assert set(risk.REASON_CONTRADICTIONS) <= seeded


# --- a large planned-quantity change just before the close ---------------------------------


def _reupsert(document: Document, planned: int, moment: datetime, clock: SetClock) -> None:
    clock(moment)
    document_upsert(
        actor=None,
        doc_type=document.doc_type,
        number=document.number,
        org_unit=document.org_unit,
        document_date=document.document_date,
        lines=[LineInput(1, Decimal(planned), Decimal(10))],
    )
    clock(NOW)


def test_large_planned_change_just_before_the_close_is_flagged(
    org: Org, operator: User, clock: SetClock
) -> None:
    document = order(org, None, planned=100, delivered=60)
    _reupsert(document, 80, NOW - timedelta(days=3), clock)
    _reupsert(document, 60, NOW - timedelta(days=2), clock)
    found = by_code(close_risks_for(document, actor=operator, now=NOW), "planned_qty_changed")
    assert found.flagged and found.lines == [1]
    assert found.measured == {
        "before": Decimal("100"),
        "after": Decimal("60"),
        "change_pct": Decimal("40.0"),
    }
    assert found.reference["days_ago"] == 3
    assert "from 100 to 60 (40.0%)" in found.message_en


def test_small_or_old_planned_change_is_not_flagged(
    org: Org, operator: User, clock: SetClock
) -> None:
    small = order(org, None, planned=100, delivered=60)
    _reupsert(small, 95, NOW - timedelta(days=1), clock)
    old = order(org, None, planned=100, delivered=60)
    _reupsert(old, 60, NOW - timedelta(days=20), clock)
    for document in (small, old):
        found = by_code(close_risks_for(document, actor=operator, now=NOW), "planned_qty_changed")
        assert found.status is RiskStatus.NORMAL


# --- a user closing far more than usual ------------------------------------------------------


def test_many_closes_today_against_the_users_usual_rate_is_flagged(
    clock: SetClock, org: Org, operator: User
) -> None:
    for i in range(10):  # one close a day on ten earlier days
        document = order(org, None, planned=10, delivered=10)
        close_on(clock, operator, document, NOW - timedelta(days=10 + i), "completed")
    next_one = order(org, None, planned=10, delivered=10)
    assert by_code(
        close_risks_for(next_one, actor=operator, now=NOW), "actor_close_rate"
    ).status is (RiskStatus.NORMAL)
    for i in range(6):  # six this morning
        document = order(org, None, planned=10, delivered=10)
        close_on(clock, operator, document, NOW - timedelta(minutes=60 - i), "completed")
    found = by_code(close_risks_for(next_one, actor=operator, now=NOW), "actor_close_rate")
    assert found.flagged
    assert found.measured == {"closes_today": 7}
    assert found.reference["active_days"] == 10 and found.reference["median_per_day"] == 1
    assert "close number 7 today" in found.message_en


def test_a_new_user_has_too_little_history(org: Org, operator: User, clock: SetClock) -> None:
    document = order(org, None, planned=10, delivered=10)
    found = by_code(close_risks_for(document, actor=operator, now=NOW), "actor_close_rate")
    assert found.status is RiskStatus.THIN_HISTORY and "only 0 days" in found.message_en


# --- the checklist, approvals ---------------------------------------------------------------


def test_risks_never_change_the_verdict(org: Org, operator: User, clock: SetClock) -> None:
    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    plain = close_checklist_for(document)
    with_risks = close_checklist_with_risks(
        document, actor=operator, reason_code="supplier_cannot_deliver"
    )
    assert plain.risks == [] and with_risks.risk_flags
    assert with_risks.verdict == plain.verdict
    assert [c.passed for c in with_risks.checks] == [c.passed for c in plain.checks]


def test_close_request_keeps_the_risk_warnings_for_the_approver(
    org: Org, operator: User, clock: SetClock
) -> None:
    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    request = close_request_submit(
        actor=operator,
        document=document,
        reason_code="supplier_cannot_deliver",
        remark="supplier went bankrupt",
    )
    risks = [c for c in request.checklist if c["severity"] == "risk"]
    assert [c["rule"] for c in risks] == ["risk:reason_recent_events"]
    assert risks[0]["passed"] is False
    assert risks[0]["measured"]["events"] == 1 and risks[0]["measured"]["quantity"] == "40"
    assert risks[0]["measured"]["last_days_ago"] == 3
    assert "supplier cannot deliver" in risks[0]["label_en"]


# --- pages, CLI, API ---------------------------------------------------------------------------


def client_for(user: User, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_close_dialog_shows_the_reason_warning_with_its_numbers(
    clock: SetClock, org: Org, operator: User
) -> None:
    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    url = reverse("web:close", args=[document.pk])
    client = client_for(operator)
    page = client.get(url).content.decode()
    assert 'id="risks"' in page and "supplier cannot deliver" not in page
    # The reason's change posts the form as a preview (htmx); the same as the preview button.
    page = client.post(
        url,
        {
            "reason": "supplier_cannot_deliver",
            "close_date": NOW.date().isoformat(),
            "submit_as": "preview",
        },
    ).content.decode()
    assert "The reason says the supplier cannot deliver, but 1 receipt event(s)" in page
    assert "quantity 40" in page and "the latest 3 day(s) ago" in page
    assert "events = 1" in page and "days = 14" in page  # measured and reference
    assert 'data-risk="reason_recent_events"' in page
    # Advisory only: the rule verdict is the one without risks.
    assert 'id="checklist-verdict">exception<' in page
    chinese = client_for(operator, "zh-hans").post(
        url, {"reason": "supplier_cannot_deliver", "submit_as": "preview"}
    )
    assert "结案原因为“供应商无法交货”，但近 14 天仍有 1 笔业务" in chinese.content.decode()


def test_document_page_shows_history_warnings(
    clock: SetClock, org: Org, operator: User, supplier: Partner
) -> None:
    history(clock, org, operator, supplier, closes=9)
    big = order(org, supplier, planned=1000, delivered=100)
    page = client_for(operator).get(reverse("web:document", args=[big.pk])).content.decode()
    assert 'data-risk="partner_released_value"' in page
    assert "This close&#x27;s released open value 9,000.00 is far above partner SUP-RISK" in page


def _checklist_queries(document: Document, operator: User) -> int:
    document = Document.objects.select_related("partner", "org_unit").get(pk=document.pk)
    with CaptureQueriesContext(connection) as queries:
        close_checklist_with_risks(document, actor=operator, reason_code="completed")
    return len(queries)


def test_queries_do_not_grow_with_the_history(
    clock: SetClock,
    org: Org,
    operator: User,
    supplier: Partner,
    bolt: Item,
    django_assert_max_num_queries: Callable[..., object],
) -> None:
    history(clock, org, operator, supplier, closes=2, item=bolt)
    document = order(org, supplier, planned=100, delivered=40, item=bolt)
    few = _checklist_queries(document, operator)
    history(clock, org, operator, supplier, closes=10, item=bolt)
    with django_assert_max_num_queries(12):  # type: ignore[operator]
        assert _checklist_queries(document, operator) == few
    client = client_for(operator)
    with django_assert_max_num_queries(40):  # type: ignore[operator]
        response = client.post(
            reverse("web:close", args=[document.pk]),
            {"reason": "completed", "submit_as": "preview"},
        )
    assert 'data-risk="reason_open_remainder"' in response.content.decode()


def test_cli_check_prints_the_risk_warnings(clock: SetClock, org: Org, operator: User) -> None:
    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    out = StringIO()
    call_command(
        "check",
        "purchase_order",
        document.number,
        "--reason",
        "supplier_cannot_deliver",
        "--as",
        operator.get_username(),
        "--lang",
        "en",
        stdout=out,
    )
    text = out.getvalue()
    assert "risk warnings (advisory, not part of the verdict):" in text
    assert "RISK reason_recent_events (lines 1)" in text
    assert "measured: events" in text and "threshold: events in the last 14 days = 0" in text
    assert "thin_history actor_close_rate" in text
    assert "verdict: exception" in text


def test_api_checklist_has_the_risks(clock: SetClock, org: Org, operator: User) -> None:
    from closeout.api.services import api_token_create

    document = order(org, None, planned=100, delivered=40, delivered_days_before=3)
    secret = api_token_create(actor=None, user=operator, name="risk test").raw
    response = Client().get(
        f"/api/documents/purchase_order/{document.number}/checklist",
        {"reason": "supplier_cannot_deliver"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200, response.content
    risks = response.json()["risks"]
    flagged = [r for r in risks if r["status"] == "flagged"]
    assert [r["code"] for r in flagged] == ["reason_recent_events"]
    assert flagged[0]["measured"] == {"events": 1, "quantity": "40"}
    auto = Client().get(
        f"/api/documents/purchase_order/{document.number}/checklist",
        {"for_auto": "true"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert auto.json()["risks"] == []
