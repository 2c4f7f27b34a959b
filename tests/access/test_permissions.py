"""Every write checks the actor's grants at call time: no grant, a grant elsewhere in the
organisation, for other document types, expired or revoked are all refused, naming the
permission; a role includes the roles it inherits."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.access.models import Grant
from closeout.closing.services import document_close, document_hold, document_reopen
from closeout.core.errors import PermissionDenied
from closeout.documents.models import CloseState, Document
from closeout.documents.services import event_post
from tests.factories import PO, Org, audit_head, ready_document, user_with_role

pytestmark = pytest.mark.django_db

Setup = Callable[[Org], User]

REFUSED: dict[str, Setup] = {
    "no grant": lambda org: user_with_role("nobody", None),
    "other org unit": lambda org: user_with_role("b_op", "operator", org.dept_b),
    "other doc types": lambda org: user_with_role(
        "so_op", "operator", org.company, doc_types=["sales_order"]
    ),
    "expired": lambda org: user_with_role("old_op", "operator", org.company, valid_until_days=-1),
    "revoked": lambda org: _revoked(user_with_role("rev_op", "operator", org.company)),
    "role without it": lambda org: user_with_role("aud", "auditor", org.company),
}


def _revoked(user: User) -> User:
    Grant.objects.filter(user=user).update(revoked_at=timezone.now())
    return user


@pytest.mark.parametrize("case", list(REFUSED))
def test_close_is_refused_naming_the_permission(org: Org, case: str) -> None:
    user = REFUSED[case](org)
    doc = ready_document(PO, org.dept_a)
    before = audit_head()
    with pytest.raises(PermissionDenied) as refused:
        document_close(actor=user, document=doc, reason_code="completed")
    assert "'close.direct'" in refused.value.message
    assert user.username in refused.value.message and doc.number in refused.value.message
    assert refused.value.details["permission"] == "close.direct"
    assert Document.objects.get(pk=doc.pk).close_state == CloseState.OPEN
    assert audit_head() == before


@pytest.mark.parametrize("case", ["no grant", "other org unit", "expired", "revoked"])
def test_hold_and_event_posting_are_refused(org: Org, case: str) -> None:
    user = REFUSED[case](org)
    doc = ready_document(PO, org.dept_a)
    with pytest.raises(PermissionDenied, match=r"'document\.hold'"):
        document_hold(actor=user, document=doc, reason="x")
    with pytest.raises(PermissionDenied, match=r"'document\.sync'"):
        event_post(
            actor=user, document=doc, kind="receipt", external_id="E-1", line_no=1, quantity="1"
        )


def test_operator_cannot_reopen(org: Org, operator: User) -> None:
    doc = ready_document(PO, org.dept_a)
    document_close(actor=operator, document=doc, reason_code="completed")
    with pytest.raises(PermissionDenied, match=r"'reopen\.approve'"):
        document_reopen(actor=operator, document=doc, reason_code="wrong_close")


def test_grant_covers_descendant_units_and_listed_types(org: Org) -> None:
    team_lead = user_with_role("lead", "operator", org.dept_a, doc_types=[PO])
    doc = ready_document(PO, org.team_a1)
    assert document_close(actor=team_lead, document=doc, reason_code="completed").header_closed


def test_supervisor_inherits_operator(org: Org, supervisor: User) -> None:
    # close.direct and document.hold come from the included operator role.
    doc = ready_document(PO, org.dept_b)
    document_hold(actor=supervisor, document=doc, reason="check")
    held = Document.objects.get(pk=doc.pk)
    assert held.close_state == CloseState.ON_HOLD
    other = ready_document(PO, org.dept_b)
    document_close(actor=supervisor, document=other, reason_code="completed")
    document_reopen(actor=supervisor, document=other, reason_code="wrong_close")


def test_grant_ending_now_stops_working_at_once(org: Org) -> None:
    user = user_with_role("temp", "operator", org.company, valid_until_days=1)
    doc = ready_document(PO, org.dept_a)
    document_hold(actor=user, document=doc, reason="x")
    Grant.objects.filter(user=user).update(valid_until=timezone.now())
    with pytest.raises(PermissionDenied):
        document_close(actor=user, document=ready_document(PO, org.dept_a), reason_code="completed")
