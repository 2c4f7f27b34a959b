"""Races on PostgreSQL, each side in its own thread with its own connection, released together
by a barrier: two approvers deciding the same step, and an approval racing a withdrawal.
Exactly one outcome, the document state agreeing with it, and the audit chain intact."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from closeout.approvals.decide import close_request_approve, close_request_withdraw
from closeout.approvals.models import ApprovalDecision, CloseRequest, RequestState
from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.core.errors import DomainError, InvalidTransition
from closeout.documents.models import CloseState, Document
from tests.approvals.conftest import make_route, short_po, submit_close
from tests.factories import org_tree, user_with_role

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def race(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions at the same moment, one thread and one connection each; each result is
    the return value or the DomainError raised."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(i: int, action: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = action()
        except DomainError as error:
            results[i] = error
        except BaseException as error:  # reported by the assertions below
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


def _people() -> tuple[Any, User, User, User]:
    org = org_tree()
    return (
        org,
        user_with_role("buyer", "operator", org.company),
        user_with_role("sup-a", "supervisor", org.company),
        user_with_role("sup-b", "supervisor", org.company),
    )


@pytest.mark.parametrize("rounds", range(3))
def test_two_approvers_one_step_one_decision(rounds: int) -> None:
    org, buyer, sup_a, sup_b = _people()
    make_route("sup")
    request = submit_close(buyer, short_po(org.team_a1))

    results = race(
        lambda: close_request_approve(actor=sup_a, request=request, comment="a"),
        lambda: close_request_approve(actor=sup_b, request=request, comment="b"),
    )

    winners = [r for r in results if isinstance(r, CloseRequest)]
    losers = [r for r in results if isinstance(r, DomainError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], InvalidTransition), losers[0]
    assert ApprovalDecision.objects.filter(request=request).count() == 1
    request.refresh_from_db()
    assert request.state == RequestState.EXECUTED
    assert Document.objects.get(pk=request.document_id).close_state == CloseState.CLOSED
    assert AuditEvent.objects.filter(action=AuditAction.APPROVAL_DECIDED).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED).count() == 1
    assert audit_chain_verify().intact


@pytest.mark.parametrize("rounds", range(3))
def test_approval_racing_a_withdrawal_has_one_outcome(rounds: int) -> None:
    org, buyer, sup_a, _sup_b = _people()
    make_route("sup")
    request = submit_close(buyer, short_po(org.team_a1))

    results = race(
        lambda: close_request_approve(actor=sup_a, request=request, comment="ok"),
        lambda: close_request_withdraw(actor=buyer, request=request, reason="changed my mind"),
    )

    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], InvalidTransition), errors[0]
    request.refresh_from_db()
    document = Document.objects.get(pk=request.document_id)
    decisions = ApprovalDecision.objects.filter(request=request).count()
    if request.state == RequestState.EXECUTED:
        assert isinstance(results[0], CloseRequest)
        assert document.close_state == CloseState.CLOSED
        assert decisions == 1
        assert not AuditEvent.objects.filter(action=AuditAction.CLOSE_REQUEST_ENDED).exists()
    else:
        assert request.state == RequestState.WITHDRAWN
        assert document.close_state == CloseState.OPEN
        assert decisions == 0
        assert not AuditEvent.objects.filter(action=AuditAction.APPROVAL_DECIDED).exists()
        assert not AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED).exists()
    assert audit_chain_verify().intact
