"""A small closing history with known timestamps, built through the services: manual and automatic
closes, a reopen and a second close, an approval with a rejection and a resubmission, short
closes that release open value, and open documents of several ages. Shared by the KPI, page,
CLI and browser tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

from django.contrib.auth.models import User

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.approvals.decide import close_request_approve, close_request_reject
from closeout.approvals.submit import close_request_resubmit, close_request_submit
from closeout.closing.services import document_close, document_reopen
from closeout.closing.sweep import sweep_run
from closeout.core.models import OrgUnit, Partner
from closeout.core.services import partner_get_or_create
from closeout.documents.models import Document, EventKind
from closeout.documents.services import LineInput, document_upsert
from tests.approvals.conftest import make_route
from tests.factories import AP, PO, SO, Org, complete, lenient, post, unique

# 10:00 in Shanghai on 2 March 2026: every action below happens at BASE + a known offset.
BASE = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    """Run services as if the clock showed `moment` (closed_at, decided_at, audit times)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


@dataclass(frozen=True)
class KpiWorld:
    org: Org
    closer1: User  # operator over the company
    closer2: User  # operator over the company
    boss: User  # supervisor (reopen, approve step 1, reports) over the company
    finance: User  # finance (approve step 2, reports) over the company
    viewer_a: User  # supervisor over dept A only: sees only dept A and its team in reports
    auto_po: Document
    reopened_po: Document
    short_po: Document
    approved_so: Document
    auto_ap: Document


def person(username: str, role: str, unit: OrgUnit) -> User:
    """A user whose grant starts before BASE (grants start when made, by default). No password
    (hashing one costs a third of a second): tests sign in with force_login."""
    user = User.objects.create_user(username=username, password=None)
    grant_create(
        actor=None,
        user=user,
        role=Role.objects.get(code=role),
        org_unit=unit,
        valid_from=BASE - timedelta(days=30),
        reason="test",
    )
    return user


def document(
    doc_type: str,
    unit: OrgUnit,
    lines: tuple[tuple[int, int], ...],
    *,
    partner: Partner | None = None,
    document_date: date | None = None,
) -> Document:
    return document_upsert(
        actor=None,
        doc_type=doc_type,
        number=unique(doc_type[:2].upper()),
        org_unit=unit,
        document_date=document_date or date(2025, 12, 1),
        lines=[
            LineInput(line_no=i, planned_qty=Decimal(q), unit_price=Decimal(p))
            for i, (q, p) in enumerate(lines, start=1)
        ],
        partner=partner,
    )


def short(doc: Document, received: int, price: int, *, days_ago: float) -> Document:
    """Receive (or ship), invoice and pay `received` of line 1: the `received` rule fails."""
    kind = EventKind.RECEIPT if doc.doc_type == PO else EventKind.SHIPMENT
    post(doc, kind, 1, received, days_ago=days_ago)
    post(doc, EventKind.INVOICE, 1, received, received * price, days_ago=days_ago)
    post(doc, EventKind.PAYMENT, 1, 0, received * price, days_ago=days_ago)
    doc.refresh_from_db()
    return doc


def build_world(org: Org) -> KpiWorld:
    closer1 = person("closer1", "operator", org.company)
    closer2 = person("closer2", "operator", org.company)
    boss = person("boss", "supervisor", org.company)
    finance = person("money", "finance", org.company)
    viewer_a = person("viewer_a", "supervisor", org.dept_a)
    acme = partner_get_or_create(code="ACME", name="Acme 供应")
    globex = partner_get_or_create(code="GLOBEX", name="Globex")
    lenient(PO)
    lenient(AP)
    make_route(
        "SO exceptions",
        doc_type=SO,
        condition="exception",
        steps=(
            ("supervisor", "主管审批"),
            ("finance", "财务审批"),
        ),
    )

    # Day 0: two documents complete since 10 and 4 days; the sweep closes both automatically.
    with at(BASE):
        auto_po = complete(document(PO, org.team_a1, ((10, 5),)), days_ago=10)
        auto_ap = complete(document(AP, org.dept_b, ((3, 7),)), days_ago=4)
        sweep_run()
    # Day 1: a PO complete 30 days ago, closed by hand by closer1.
    with at(BASE + timedelta(days=1)):
        reopened_po = complete(document(PO, org.dept_a, ((4, 2),), partner=acme), days_ago=30)
        document_close(actor=closer1, document=reopened_po, reason_code="completed")
    # Day 2: the boss reopens it; day 3: closer2 closes it again.
    with at(BASE + timedelta(days=2)):
        document_reopen(actor=boss, document=reopened_po, reason_code="wrong_close")
    with at(BASE + timedelta(days=3)):
        document_close(actor=closer2, document=reopened_po, reason_code="completed")
    # Day 5: a short-delivered PO (40 of 100 at 3, 6 days ago) closed by closer2: releases 180.
    with at(BASE + timedelta(days=5)):
        short_po = short(document(PO, org.dept_b, ((100, 3),), partner=globex), 40, 3, days_ago=6)
        document_close(
            actor=closer2,
            document=short_po,
            reason_code="supplier_cannot_deliver",
            remark="the supplier stopped the item",
        )
    # Day 7: a short SO needs two approvals: step 1 approves after 1 h, step 2 rejects 2 h
    # later, the requester resubmits after 5 h; step 1 approves 1 h later, and step 2 the next
    # morning, 10 h later (02:00 UTC is 10:00 in Shanghai): then it closes.
    t = BASE + timedelta(days=7)
    with at(t):
        approved_so = short(document(SO, org.dept_b, ((10, 50),), partner=acme), 8, 50, days_ago=2)
        request = close_request_submit(
            actor=closer1,
            document=approved_so,
            reason_code="customer_change",
            remark="customer cancelled the rest",
        )
    with at(t + timedelta(hours=1)):
        close_request_approve(actor=boss, request=request)
    with at(t + timedelta(hours=3)):
        close_request_reject(actor=finance, request=request, comment="attach the e-mail")
    with at(t + timedelta(hours=5)):
        close_request_resubmit(actor=closer1, request=request, remark="customer e-mail attached")
    with at(t + timedelta(hours=6)):
        close_request_approve(actor=boss, request=request)
    with at(t + timedelta(hours=16)):
        close_request_approve(actor=finance, request=request)
    # Open documents of several ages (today = BASE + 10 days).
    today = (BASE + timedelta(days=10)).date()
    with at(BASE + timedelta(days=10)):
        for unit, doc_type, age in (
            (org.team_a1, PO, 5),
            (org.dept_a, PO, 45),
            (org.dept_b, SO, 75),
            (org.dept_b, PO, 100),
            (org.company, AP, 200),
        ):
            document(doc_type, unit, ((2, 10),), document_date=today - timedelta(days=age))
    for doc in (auto_po, reopened_po, short_po, approved_so, auto_ap):
        doc.refresh_from_db()
    return KpiWorld(
        org,
        closer1,
        closer2,
        boss,
        finance,
        viewer_a,
        auto_po,
        reopened_po,
        short_po,
        approved_so,
        auto_ap,
    )


TODAY = (BASE + timedelta(days=10)).date()
