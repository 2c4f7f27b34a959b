"""The checklist and risk warnings of many closes at once (`closing.checks_many`) give each
document what the one-document checks give it, for random choices of documents, lines and
reasons, in a number of queries that does not grow with the number of documents."""

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closeout.closing.checks_many import CloseCase, close_checklists_for, close_risks_for_many
from closeout.closing.risk import close_risks_for
from closeout.closing.selectors import close_checklist_for
from closeout.closing.services import document_close
from closeout.core.models import Item, Partner
from closeout.core.services import item_get_or_create, partner_get_or_create
from closeout.documents.models import Document, EventKind
from closeout.documents.services import LineInput, document_upsert
from tests.factories import PO, SO, Org, complete, post, set_policy, unique

REASONS = ["", "completed", "short_delivery_accepted", "supplier_cannot_deliver", "goods_returned"]


def _order(
    org: Org,
    doc_type: str,
    planned: list[int],
    *,
    partner: Partner | None = None,
    items: Sequence[Item] = (),
) -> Document:
    unit = org.dept_b if len(planned) == 3 else org.dept_a
    return document_upsert(
        actor=None,
        doc_type=doc_type,
        number=unique("CM"),
        org_unit=unit,
        document_date=timezone.localdate() - timedelta(days=200),
        lines=[
            LineInput(
                i, Decimal(qty), Decimal(7), item=items[(i - 1) % len(items)] if items else None
            )
            for i, qty in enumerate(planned, start=1)
        ],
        partner=partner,
    )


def _nth(items: Sequence[Item], n: int) -> Item | None:
    return items[n % len(items)] if items else None


@pytest.fixture
def pool(org: Org, operator: User) -> list[int]:
    """Documents of two types and two policies, with partner and item histories (some long
    enough to judge), recent and old deliveries, returns, a planned-quantity change, a line
    closed already and a closed document."""
    set_policy(PO, org.dept_b, grace_days=3, tolerance_pct=Decimal(5))
    supplier = partner_get_or_create(code="SUP-MANY", name="供应商 many")
    customer = partner_get_or_create(code="CUS-MANY", name="客户 many")
    bolt, nut = (
        item_get_or_create(code="BOLT-MANY", name="螺栓"),
        item_get_or_create(code="NUT-MANY", name="螺母"),
    )
    for i in range(9):  # the supplier's and the bolt's history of short closes
        earlier = _order(org, PO, [100], partner=supplier, items=[bolt])
        post(earlier, EventKind.RECEIPT, 1, 95 + i % 3, days_ago=40)
        document_close(
            actor=operator, document=earlier, reason_code="short_delivery_accepted", remark="x"
        )
    docs: list[Document] = []
    docs.append(complete(_order(org, PO, [10, 20], partner=supplier, items=[bolt, nut])))
    big = _order(org, PO, [1000, 50, 5], partner=supplier, items=[bolt])
    post(big, EventKind.RECEIPT, 1, 100, days_ago=3)
    post(big, EventKind.RECEIPT, 2, 50, days_ago=30)
    docs.append(big)
    returned = _order(org, PO, [10, 10], items=[nut])
    post(returned, EventKind.RECEIPT, 1, 10, days_ago=20)
    post(returned, EventKind.RETURN, 1, 2, days_ago=2)
    docs.append(returned)
    changed = _order(org, PO, [100, 40])
    post(changed, EventKind.RECEIPT, 1, 60, days_ago=5)
    document_upsert(
        actor=None,
        doc_type=PO,
        number=changed.number,
        org_unit=changed.org_unit,
        document_date=changed.document_date,
        lines=[LineInput(1, Decimal(60), Decimal(7)), LineInput(2, Decimal(40), Decimal(7))],
    )
    docs.append(changed)
    some_closed = _order(org, PO, [10, 10, 10], partner=supplier, items=[bolt, nut])
    post(some_closed, EventKind.RECEIPT, 2, 10, days_ago=50)
    document_close(
        actor=operator, document=some_closed, reason_code="completed", remark="x", line_nos=[2]
    )
    docs.append(some_closed)
    sales = _order(org, SO, [30, 30], partner=customer, items=[bolt])
    post(sales, EventKind.SHIPMENT, 1, 30, days_ago=1)
    docs.append(sales)
    docs.append(complete(_order(org, SO, [5], partner=customer)))
    done = complete(_order(org, PO, [8]))
    document_close(actor=operator, document=done, reason_code="completed")
    docs.append(done)
    docs.append(_order(org, PO, [12, 0, 3], items=[nut, bolt]))
    return [d.pk for d in docs]


case_choices = st.lists(
    st.tuples(
        st.integers(0, 8),
        st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True)),
        st.sampled_from(REASONS),
    ),
    min_size=1,
    max_size=9,
    unique_by=lambda t: t[0],
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(choices=case_choices)
def test_many_closes_get_what_each_gets_alone(
    pool: list[int], operator: User, choices: list[tuple[int, list[int] | None, str]]
) -> None:
    documents = Document.objects.select_related("org_unit").in_bulk(pool)
    cases = [CloseCase(documents[pool[i]], nos, reason) for i, nos, reason in choices]
    now = timezone.now()
    checklists = close_checklists_for(cases)
    risks = close_risks_for_many(cases, actor=operator, now=now)
    assert set(checklists) == set(risks) == {case.document.pk for case in cases}
    for case in cases:
        document = Document.objects.select_related("org_unit").get(pk=case.document.pk)
        alone = close_checklist_for(document, line_nos=case.line_nos)
        assert checklists[document.pk] == alone
        assert checklists[document.pk].verdict == alone.verdict
        assert risks[document.pk] == close_risks_for(
            document,
            actor=operator,
            reason_code=case.reason_code,
            line_nos=case.line_nos,
            now=now,
        )


def test_the_reads_do_not_grow_with_the_documents(pool: list[int], operator: User) -> None:
    documents = Document.objects.select_related("org_unit").in_bulk(pool)
    cases = [CloseCase(documents[pk], None, "supplier_cannot_deliver") for pk in pool]
    same_policy = [cases[0], cases[2], cases[3]]  # open purchase orders of one unit
    counted = []
    for some in (cases[:1], same_policy, cases):
        with CaptureQueriesContext(connection) as queries:
            close_checklists_for(some)
            close_risks_for_many(some, actor=operator)
        counted.append(len(queries))
    assert counted[0] == counted[1]
    assert counted[2] <= 20  # two types, two policies
