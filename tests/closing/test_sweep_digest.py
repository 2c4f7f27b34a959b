"""After a sweep, each operator and supervisor gets one digest, never one message per
document (S10)."""

import pytest

from closeout.closing.sweep import sweep_run
from closeout.notifications.models import Notification
from tests.factories import PO, SO, Org, complete, lenient, make_document, org_tree, user_with_role

pytestmark = pytest.mark.django_db


def test_one_digest_per_person_with_the_types_they_cover() -> None:
    org: Org = org_tree()
    lenient(PO)
    lenient(SO)
    buyer = user_with_role("digest-buyer", "operator", org.dept_a, doc_types=[PO])
    boss = user_with_role("digest-boss", "supervisor", org.company)
    outsider = user_with_role("digest-auditor", "auditor", org.company)
    for _ in range(3):
        complete(make_document(PO, org.dept_a))
    complete(make_document(SO, org.dept_b))
    run = sweep_run()
    assert run.closed == 4
    (buyer_note,) = Notification.objects.filter(user=buyer, kind="auto_close_digest")
    assert buyer_note.data["context"]["counts"] == {PO: 3}
    (boss_note,) = Notification.objects.filter(user=boss, kind="auto_close_digest")
    assert boss_note.data["context"]["counts"] == {PO: 3, SO: 1}
    assert not Notification.objects.filter(user=outsider).exists()
    # A dry run and a sweep that closes nothing send nothing.
    sweep_run(dry_run=True)
    sweep_run()
    assert Notification.objects.filter(kind="auto_close_digest").count() == 2
