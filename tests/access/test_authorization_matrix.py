"""The full authorisation matrix (S14): every standard role × every action × a document inside
and outside the role's organisation unit. Each case asserts the exact outcome: the action
succeeds where the table says so, and everywhere else it is refused with PermissionDenied and
changes nothing. The expected sets are written out here from the role permission lists of
src/closeout/access/migrations/0002_standard_roles.py, so a change to the roles must change
this file. The same matrix over HTTP, generated from /api/openapi.json with callers of one
department and out-of-scope targets, is test_authorization_matrix_http.py."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from pytest_django.fixtures import Settings

from closeout.access.models import Grant, Role
from closeout.access.selectors import user_permissions
from closeout.access.services import grant_create
from closeout.approvals.decide import close_request_approve, close_request_reject
from closeout.approvals.models import ApprovalDecision, CloseRequest, RequestState
from closeout.approvals.submit import reopen_request_submit
from closeout.closing.services import (
    document_close,
    document_hold,
    document_release,
    document_reopen,
)
from closeout.core.errors import PermissionDenied
from closeout.core.models import OrgUnit
from closeout.documents.models import BusinessEvent, CloseState, Document, EventKind
from closeout.documents.services import event_post
from tests.approvals.conftest import make_route, submit_close
from tests.factories import PO, Org, org_tree, ready_document, unique, user_with_role

# The permission lists of the standard roles (migration 0002), supervisor ⊃ operator.
OPERATOR = {
    "document.view",
    "close.request",
    "close.direct",
    "reopen.request",
    "document.hold",
    "batch.run",
    "import.run",
}
ROLE_PERMISSIONS: dict[str | None, set[str]] = {
    "operator": OPERATOR,
    "supervisor": OPERATOR | {"close.approve", "reopen.approve", "report.view"},
    "finance": {
        "document.view",
        "close.direct",
        "close.approve",
        "reopen.request",
        "reopen.approve",
        "document.hold",
        "report.view",
    },
    "auditor": {"document.view", "audit.view", "report.view"},
    "integration": {"document.view", "document.sync"},
    "admin": {
        "document.view",
        "document.sync",
        "close.request",
        "close.direct",
        "close.approve",
        "reopen.request",
        "reopen.approve",
        "document.hold",
        "batch.run",
        "import.run",
        "policy.manage",
        "access.manage",
        "audit.view",
        "report.view",
    },
    None: set(),
}

# Inside the role's organisation unit, exactly these actions succeed.
ALLOWED: dict[str | None, set[str]] = {
    "operator": {"close_direct", "close_request", "reopen_request", "hold", "release"},
    "supervisor": {
        "close_direct",
        "close_request",
        "approve",
        "reject",
        "reopen_direct",
        "reopen_request",
        "hold",
        "release",
    },
    "finance": {
        "close_direct",
        "approve",
        "reject",
        "reopen_direct",
        "reopen_request",
        "hold",
        "release",
    },
    "auditor": set(),
    "integration": {"post_event"},
    "admin": {
        "close_direct",
        "close_request",
        "approve",
        "reject",
        "reopen_direct",
        "reopen_request",
        "hold",
        "release",
        "post_event",
        "grant",
    },
    None: set(),
}

# The permission each action checks (approve and reject also need the step's role; the step
# below asks for the role under test, so only the permission decides).
NEEDS = {
    "close_direct": "close.direct",
    "close_request": "close.request",
    "approve": "close.approve",
    "reject": "close.approve",
    "reopen_direct": "reopen.approve",
    "reopen_request": "reopen.request",
    "hold": "document.hold",
    "release": "document.hold",
    "post_event": "document.sync",
    "grant": "access.manage",
}
ROLES = list(ALLOWED)
ACTIONS = list(NEEDS)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_the_table_follows_the_role_permissions(db: None) -> None:
    """The table above is the permission lists stated once more; both agree with the roles
    in the database (inheritance included)."""
    org = org_tree()
    for role, perms in ROLE_PERMISSIONS.items():
        user = user_with_role(f"u-{role}", role, org.company)
        assert user_permissions(user) == perms, role
        assert ALLOWED[role] == {a for a, p in NEEDS.items() if p in perms}, role


@dataclass
class Case:
    org: Org
    setup: User  # an administrator of the whole company who prepares the data
    actor: User
    role: str | None
    target_unit: OrgUnit


Prepare = Callable[[Case], Callable[[], object]]
Check = Callable[[], object]


def _ready(case: Case) -> Document:
    return ready_document(PO, case.target_unit)


def _closed(case: Case) -> Document:
    document = _ready(case)
    document_close(actor=case.setup, document=document, reason_code="completed")
    return document


def _pending_request(case: Case) -> CloseRequest:
    # The step asks for the role under test (any role for "no role"): the permission decides.
    make_route("matrix", steps=((case.role or "supervisor", "审批"),))
    return submit_close(case.setup, _ready(case), remark="matrix")


def _state(document: Document) -> str:
    document.refresh_from_db()
    return document.close_state


def prepare(action: str, case: Case) -> tuple[Callable[[], object], Callable[[], object]]:
    """(the action, a reading of what it would change) for one case."""
    actor = case.actor
    if action == "close_direct":
        document = _ready(case)
        return (
            lambda: document_close(actor=actor, document=document, reason_code="completed"),
            lambda: _state(document),
        )
    if action == "close_request":
        document = _ready(case)
        make_route("matrix")
        return (
            lambda: submit_close(actor, document, reason_code="completed"),
            lambda: (_state(document), CloseRequest.objects.count()),
        )
    if action in ("approve", "reject"):
        request = _pending_request(case)

        def decide() -> object:
            if action == "approve":
                return close_request_approve(actor=actor, request=request, comment="ok")
            return close_request_reject(actor=actor, request=request, comment="no")

        return decide, lambda: (
            _state(request.document),
            ApprovalDecision.objects.count(),
            CloseRequest.objects.get(pk=request.pk).state,
        )
    if action == "reopen_direct":
        document = _closed(case)
        return (
            lambda: document_reopen(actor=actor, document=document, reason_code="wrong_close"),
            lambda: _state(document),
        )
    if action == "reopen_request":
        document = _closed(case)
        make_route("matrix reopen", action="reopen", steps=(("finance", "财务"),))
        return (
            lambda: reopen_request_submit(
                actor=actor, document=document, reason_code="wrong_close", remark="matrix"
            ),
            lambda: (_state(document), CloseRequest.objects.count()),
        )
    if action == "hold":
        document = _ready(case)
        return (
            lambda: document_hold(actor=actor, document=document, reason="matrix"),
            lambda: _state(document),
        )
    if action == "release":
        document = _ready(case)
        document_hold(actor=case.setup, document=document, reason="matrix")
        return (
            lambda: document_release(actor=actor, document=document, reason="matrix"),
            lambda: _state(document),
        )
    if action == "post_event":
        document = _ready(case)
        return (
            lambda: event_post(
                actor=actor,
                document=document,
                kind=EventKind.INVOICE,
                external_id=unique("MX"),
                line_no=1,
                quantity="0",
                amount="0",
                occurred_at=timezone.now() - timedelta(days=1),
            ),
            lambda: BusinessEvent.objects.count(),
        )
    if action == "grant":
        newcomer = user_with_role(unique("new"), None)
        return (
            lambda: grant_create(
                actor=actor,
                user=newcomer,
                role=Role.objects.get(code="auditor"),
                org_unit=case.target_unit,
                reason="matrix",
            ),
            lambda: Grant.objects.filter(user=newcomer).count(),
        )
    raise AssertionError(action)


@pytest.mark.parametrize("in_scope", [True, False], ids=["in-scope", "out-of-scope"])
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES, ids=[r or "no-role" for r in ROLES])
def test_authorisation(db: None, role: str | None, action: str, in_scope: bool) -> None:
    org = org_tree()
    setup = user_with_role("setup", "admin", org.company)
    # The role is granted over department A; the document lies in a team inside it, or in
    # department B.
    actor = user_with_role("actor", role, org.dept_a)
    case = Case(org, setup, actor, role, org.team_a1 if in_scope else org.dept_b)
    run, observe = prepare(action, case)
    before = observe()
    expected = in_scope and action in ALLOWED[role]

    if expected:
        result = run()
        assert result is not None
        assert observe() != before, f"{role} {action}: succeeded but changed nothing"
        if action == "approve":
            assert CloseRequest.objects.get().state == RequestState.EXECUTED
            assert _state(CloseRequest.objects.get().document) == CloseState.CLOSED
    else:
        with pytest.raises(PermissionDenied):
            run()
        assert observe() == before, f"{role} {action}: refused but changed something"
