"""Shared setup for the approval tests: routes, people with approval roles, documents that need
approval (short-delivered purchase orders), and small readers for decisions and inbox messages.

The helpers are plain functions so that tests/access can import them too."""

from collections.abc import Sequence
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from closeout.access.models import Role
from closeout.approvals.models import ApprovalRoute, ApprovalStep, CloseRequest
from closeout.approvals.submit import close_request_submit
from closeout.closing.services import document_close
from closeout.documents.models import Document, EventKind
from closeout.notifications.models import Notification
from tests.factories import PO, Org, make_document, post, ready_document, user_with_role

SUPERVISOR_STEP = (("supervisor", "主管审批"),)
TWO_STEPS = (("supervisor", "主管审批"), ("finance", "财务审批"))


def make_route(
    name: str,
    *,
    action: str = "close",
    steps: Sequence[tuple[str, str]] = SUPERVISOR_STEP,
    sla_hours: int = 24,
    **conditions: object,
) -> ApprovalRoute:
    """An active route with its steps in order (role code, step name). `conditions` are the
    route's fields: doc_type, org_unit, condition, min/max_open_value, min/max_total,
    for_closed_period, priority, active."""
    route = ApprovalRoute.objects.create(name=name, action=action, **conditions)
    for order, (role, step_name) in enumerate(steps, start=1):
        ApprovalStep.objects.create(
            route=route,
            order=order,
            name=step_name,
            role=Role.objects.get(code=role),
            sla_hours=sla_hours,
        )
    return route


def short_po(
    org_unit: object, *, planned: int = 1000, price: int = 100, received: int = 400
) -> Document:
    """A purchase order received, invoiced and paid only in part: the 'received' exception rule
    fails, no blocking rule does; closing it releases (planned - received) × price."""
    document = make_document(PO, org_unit, ((planned, price),))  # type: ignore[arg-type]
    post(document, EventKind.RECEIPT, 1, received)
    post(document, EventKind.INVOICE, 1, received, received * price)
    post(document, EventKind.PAYMENT, 1, 0, received * price)
    document.refresh_from_db()
    return document


def two_line_po(org_unit: object) -> Document:
    """A purchase order of two lines, each fully received, invoiced and paid."""
    return ready_document(PO, org_unit, ((10, 5), (4, 2)))  # type: ignore[arg-type]


def closed_po(org_unit: object, actor: User) -> Document:
    document = ready_document(PO, org_unit)  # type: ignore[arg-type]
    document_close(actor=actor, document=document, reason_code="completed")
    document.refresh_from_db()
    return document


def submit_close(actor: User, document: Document, **kwargs: object) -> CloseRequest:
    values: dict[str, object] = {"reason_code": "supplier_cannot_deliver", "remark": "short"}
    values.update(kwargs)
    return close_request_submit(actor=actor, document=document, **values)  # type: ignore[arg-type]


def inbox(user: User, kind: str | None = None) -> list[Notification]:
    messages = Notification.objects.filter(user=user).order_by("id")
    if kind is not None:
        messages = messages.filter(kind=kind)
    return list(messages)


def fresh(document: Document) -> Document:
    document.refresh_from_db()
    return document


def amount(value: str | int) -> Decimal:
    return Decimal(value)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Settings) -> None:
    """Test users get a password; the production hasher would spend most of each test on it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sup2(org: Org) -> User:
    return user_with_role("sup2", "supervisor", org.company)


@pytest.fixture
def finance(org: Org) -> User:
    return user_with_role("fin", "finance", org.company)


@pytest.fixture
def finance2(org: Org) -> User:
    return user_with_role("fin2", "finance", org.company)


@pytest.fixture
def admin(org: Org) -> User:
    return user_with_role("adm", "admin", org.company)
