"""Test data built by calling the services, as a user of closeout would: organisation units,
users with grants, documents with lines, business events; plus small audit helpers."""

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent
from closeout.closing.models import ClosePolicy
from closeout.core.models import Item, OrgUnit
from closeout.core.services import item_get_or_create, org_unit_get_or_create
from closeout.documents.models import DocType, Document, EventKind
from closeout.documents.services import EventResult, LineInput, document_upsert, event_post

PO = DocType.PURCHASE_ORDER
SO = DocType.SALES_ORDER
SC = DocType.STOCK_COUNT
AR = DocType.RECEIVABLE
AP = DocType.PAYABLE
PS = DocType.PROJECT_STAGE

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    """A number or external id no other call in this test run returns."""
    return f"{prefix}-{next(_serial):06d}"


@contextmanager
def rolled_back() -> Iterator[None]:
    """One hypothesis example: everything it writes is rolled back at the end (a savepoint
    inside the test's transaction), so examples never see each other's documents."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- organisation and people -----------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    company: OrgUnit
    dept_a: OrgUnit
    dept_b: OrgUnit
    team_a1: OrgUnit  # inside dept_a


def org_tree() -> Org:
    company = org_unit_get_or_create(code="HQ", name="总公司 Head office")
    dept_a = org_unit_get_or_create(code="D-A", name="采购部 Purchasing", parent=company)
    dept_b = org_unit_get_or_create(code="D-B", name="销售部 Sales", parent=company)
    team_a1 = org_unit_get_or_create(code="T-A1", name="一组 Team 1", parent=dept_a)
    return Org(company, dept_a, dept_b, team_a1)


def user_with_role(
    username: str,
    role: str | None,
    org_unit: OrgUnit | None = None,
    *,
    doc_types: list[str] | None = None,
    valid_until_days: int | None = None,
) -> User:
    """A user with one grant (none when `role` is None). `valid_until_days` < 0 makes an
    expired grant."""
    user = User.objects.create_user(username=username, password="x-test-only")
    if role is not None:
        assert org_unit is not None
        now = timezone.now()
        until = None if valid_until_days is None else now + timedelta(days=valid_until_days)
        grant_create(
            actor=None,
            user=user,
            role=Role.objects.get(code=role),
            org_unit=org_unit,
            doc_types=doc_types,
            valid_from=now - timedelta(days=30) if until is not None else None,
            valid_until=until,
            reason="test",
        )
    return user


# --- policies ----------------------------------------------------------------------------------


def set_policy(doc_type: str, org_unit: OrgUnit | None = None, **values: object) -> ClosePolicy:
    """Change (or, for an organisation unit, create) the close policy of a type."""
    policy, _ = ClosePolicy.objects.get_or_create(doc_type=doc_type, org_unit=org_unit)
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    return policy


def lenient(doc_type: str, **values: object) -> ClosePolicy:
    """The default policy with no grace days, so documents built now can auto-close."""
    return set_policy(doc_type, grace_days=0, **values)


# --- documents and events ----------------------------------------------------------------------

LineSpec = tuple[Decimal | int | str, Decimal | int | str]


def make_document(
    doc_type: str,
    org_unit: OrgUnit,
    lines: Sequence[LineSpec] = ((10, 5),),
    *,
    item: Item | None = None,
    items: Sequence[Item | None] | None = None,
    document_date: date | None = None,
    exchange_rate: Decimal = Decimal(1),
    number: str | None = None,
) -> Document:
    """A document with lines given as (planned quantity, unit price)."""
    inputs = [
        LineInput(
            line_no=i,
            planned_qty=Decimal(qty),
            unit_price=Decimal(price),
            item=items[i - 1] if items is not None else item,
        )
        for i, (qty, price) in enumerate(lines, start=1)
    ]
    return document_upsert(
        actor=None,
        doc_type=doc_type,
        number=number or unique(str(doc_type)[:2].upper()),
        org_unit=org_unit,
        document_date=document_date or timezone.localdate() - timedelta(days=120),
        lines=inputs,
        exchange_rate=exchange_rate,
    )


def post(
    document: Document,
    kind: str,
    line_no: int | None = 1,
    quantity: Decimal | int | str = 0,
    amount: Decimal | int | str = 0,
    *,
    days_ago: float = 60,
    pending: bool = False,
    external_id: str | None = None,
) -> EventResult:
    """Post one business event; by default long enough ago that every grace period is over."""
    return event_post(
        actor=None,
        document=document,
        kind=kind,
        external_id=external_id or unique("EV"),
        line_no=line_no,
        quantity=str(quantity),
        amount=str(amount),
        occurred_at=timezone.now() - timedelta(days=days_ago),
        pending=pending,
    )


def an_item(code: str = "ITEM-1") -> Item:
    return item_get_or_create(code=code, name=f"物料 {code}")


def complete(document: Document, *, days_ago: float = 60) -> Document:
    """Post the events that make every rule of the document's type pass."""
    lines = list(document.lines.order_by("line_no"))
    t = document.doc_type
    for line in lines:
        qty, value = line.planned_qty, line.planned_qty * line.unit_price
        if t in (PO, SO):
            post(
                document,
                EventKind.RECEIPT if t == PO else EventKind.SHIPMENT,
                line.line_no,
                qty,
                days_ago=days_ago,
            )
            post(document, EventKind.INVOICE, line.line_no, qty, value, days_ago=days_ago)
            post(document, EventKind.PAYMENT, line.line_no, 0, value, days_ago=days_ago)
        elif t == SC:
            post(document, EventKind.COUNT_RESULT, line.line_no, qty, days_ago=days_ago)
        elif t in (AR, AP):
            post(
                document,
                EventKind.INVOICE,
                line.line_no,
                qty,
                line.planned_amount,
                days_ago=days_ago,
            )
            post(
                document, EventKind.PAYMENT, line.line_no, 0, line.planned_amount, days_ago=days_ago
            )
        elif t == PS:
            post(document, EventKind.TASK_COMPLETION, line.line_no, qty, days_ago=days_ago)
            post(
                document,
                EventKind.COST_POSTING,
                line.line_no,
                0,
                line.planned_amount,
                days_ago=days_ago,
            )
    if t == PS:
        post(document, EventKind.ACCEPTANCE, None, days_ago=days_ago)
    document.refresh_from_db()
    return document


def ready_document(
    doc_type: str, org_unit: OrgUnit, lines: Sequence[LineSpec] = ((10, 5),), **kwargs: object
) -> Document:
    """A document whose every rule passes, last activity 60 days ago."""
    return complete(make_document(doc_type, org_unit, lines, **kwargs))  # type: ignore[arg-type]


# --- audit -------------------------------------------------------------------------------------


def audit_head() -> int:
    return AuditChainHead.objects.get(pk=1).last_seq


def actions_since(seq: int, *, object_id: int | None = None) -> list[AuditAction]:
    events = AuditEvent.objects.filter(seq__gt=seq).order_by("seq")
    if object_id is not None:
        events = events.filter(object_type="document", object_id=str(object_id))
    return [AuditAction(a) for a in events.values_list("action", flat=True)]


def document_events(document: Document, action: AuditAction) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            object_type="document", object_id=str(document.pk), action=int(action)
        ).order_by("seq")
    )
