"""The archive job (归档, S15): documents closed longer than their policy's retention become
archived (final), per type and per organisation unit, in chunks, idempotently, with one audit
event each; a dry run changes nothing; archived documents stay read-only for ever."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from closeout.approvals.submit import reopen_request_submit
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_chain_verify
from closeout.closing.queue import QueueFilter, document_queue
from closeout.closing.services import document_close, document_hold, document_reopen
from closeout.closing.states import Action, next_state
from closeout.core.errors import DocumentLocked, InvalidTransition, PermissionDenied
from closeout.documents.models import CloseState, Document, EventStatus, Line
from closeout.documents.services import LineInput, document_upsert
from closeout.reports.archive import archive_run
from tests.factories import (
    PO,
    SO,
    Org,
    actions_since,
    audit_head,
    document_events,
    post,
    ready_document,
    set_policy,
    user_with_role,
)

pytestmark = pytest.mark.django_db


def closed_doc(
    actor: User, unit: object, days_ago: int, doc_type: str = PO, remark: str = ""
) -> Document:
    """A document closed by hand with a close date `days_ago` days back."""
    today = timezone.localdate()
    doc = ready_document(
        doc_type,
        unit,  # type: ignore[arg-type]
        ((10, 5), (4, 2)),
        document_date=today - timedelta(days=days_ago + 30),
    )
    document_close(
        actor=actor,
        document=doc,
        reason_code="completed",
        remark=remark,
        close_date=today - timedelta(days=days_ago),
    )
    doc.refresh_from_db()
    return doc


def state(doc: Document) -> str:
    return Document.objects.get(pk=doc.pk).close_state


def line_states(doc: Document) -> set[str]:
    return set(Line.objects.filter(document=doc).values_list("close_state", flat=True))


def test_archives_after_the_retention_and_not_before(org: Org, supervisor: User) -> None:
    old = closed_doc(supervisor, org.dept_a, days_ago=366)
    young = closed_doc(supervisor, org.dept_a, days_ago=364)
    on_the_day = closed_doc(supervisor, org.dept_a, days_ago=365)
    still_open = ready_document(PO, org.dept_a)
    before = audit_head()
    run = archive_run()
    assert (state(old), state(on_the_day)) == (CloseState.ARCHIVED, CloseState.ARCHIVED)
    assert (state(young), state(still_open)) == (CloseState.CLOSED, CloseState.OPEN)
    assert line_states(old) == {CloseState.ARCHIVED}
    assert line_states(young) == {CloseState.CLOSED}
    assert (run.archived, run.lines_archived, run.dry_run) == (2, 4, False)
    assert run.finished_at is not None and run.actor_name == "system"
    # Exactly one audit event per archived document, nothing else.
    assert actions_since(before) == [AuditAction.DOCUMENT_ARCHIVED] * 2
    [event] = document_events(old, AuditAction.DOCUMENT_ARCHIVED)
    assert event.data["from"] == "closed" and event.data["to"] == "archived"
    assert event.data["retention_days"] == 365 and event.data["lines_archived"] == 2
    assert event.data["policy"] == "purchase_order @ *"
    assert event.request_id == f"archive-run:{run.pk}"
    assert audit_chain_verify().intact


def test_per_unit_policy_overrides_the_default(org: Org, supervisor: User) -> None:
    set_policy(PO, org.dept_a, archive_after_days=30)
    set_policy(PO, org.team_a1, archive_after_days=None)
    dept_a = closed_doc(supervisor, org.dept_a, days_ago=40)
    dept_b = closed_doc(supervisor, org.dept_b, days_ago=40)
    team = closed_doc(supervisor, org.team_a1, days_ago=900)
    dept_b_old = closed_doc(supervisor, org.dept_b, days_ago=400)
    run = archive_run()
    assert state(dept_a) == CloseState.ARCHIVED  # its unit's 30 days
    assert state(dept_b) == CloseState.CLOSED  # the default 365 days
    assert state(dept_b_old) == CloseState.ARCHIVED
    assert state(team) == CloseState.CLOSED  # its unit never archives
    assert run.retention_off == 1
    by_policy = {p["policy"]: p["archived"] for p in run.per_policy}
    assert by_policy["purchase_order @ D-A"] == 1
    assert by_policy["purchase_order @ *"] == 1
    assert "purchase_order @ T-A1" not in by_policy  # never: counted under retention off


def test_type_option_and_default_policy_per_type(org: Org, supervisor: User) -> None:
    po = closed_doc(supervisor, org.dept_a, days_ago=400)
    so = closed_doc(supervisor, org.dept_a, days_ago=400, doc_type=SO)
    archive_run(doc_type=SO)
    assert (state(po), state(so)) == (CloseState.CLOSED, CloseState.ARCHIVED)


def test_rerun_is_idempotent(org: Org, supervisor: User) -> None:
    docs = [closed_doc(supervisor, org.dept_a, days_ago=400) for _ in range(3)]
    first = archive_run(chunk_size=2)
    versions = dict(Document.objects.values_list("pk", "version"))
    before = audit_head()
    second = archive_run(chunk_size=2)
    assert (first.archived, second.archived) == (3, 0)
    assert audit_head() == before
    assert dict(Document.objects.values_list("pk", "version")) == versions
    for doc in docs:
        assert len(document_events(doc, AuditAction.DOCUMENT_ARCHIVED)) == 1


def test_dry_run_changes_nothing(org: Org, supervisor: User) -> None:
    doc = closed_doc(supervisor, org.dept_a, days_ago=400)
    closed_doc(supervisor, org.dept_a, days_ago=10)
    before = audit_head()
    versions = dict(Document.objects.values_list("pk", "version"))
    run = archive_run(dry_run=True)
    assert (run.archived, run.lines_archived, run.dry_run) == (1, 2, True)
    assert state(doc) == CloseState.CLOSED and line_states(doc) == {CloseState.CLOSED}
    assert audit_head() == before
    assert dict(Document.objects.values_list("pk", "version")) == versions


def test_a_person_needs_policy_manage(org: Org, supervisor: User, operator: User) -> None:
    doc = closed_doc(supervisor, org.dept_a, days_ago=400)
    with pytest.raises(PermissionDenied, match=r"policy\.manage"):
        archive_run(actor=operator)
    assert state(doc) == CloseState.CLOSED
    admin = user_with_role("adm", "admin", org.company)
    run = archive_run(actor=admin)
    assert run.actor_name == "adm" and state(doc) == CloseState.ARCHIVED
    [event] = document_events(doc, AuditAction.DOCUMENT_ARCHIVED)
    assert event.actor_name == "adm"


def test_transition_table_keeps_archived_final() -> None:
    assert next_state("d", CloseState.CLOSED, Action.ARCHIVE) == CloseState.ARCHIVED
    for action in Action:
        with pytest.raises(InvalidTransition, match="archived"):
            next_state("d", CloseState.ARCHIVED, action)
    with pytest.raises(InvalidTransition, match="is open: cannot archive"):
        next_state("d", CloseState.OPEN, Action.ARCHIVE)


# --- archived documents are read-only -------------------------------------------------------


@pytest.fixture
def archived(org: Org, supervisor: User) -> Document:
    doc = closed_doc(supervisor, org.dept_a, days_ago=400)
    archive_run()
    doc.refresh_from_db()
    assert doc.close_state == CloseState.ARCHIVED
    return doc


def test_erp_upsert_of_an_archived_document_is_refused(archived: Document, org: Org) -> None:
    before = audit_head()
    with pytest.raises(DocumentLocked, match=r"archived \(最终结案, final\).*never"):
        document_upsert(
            actor=None,
            doc_type=PO,
            number=archived.number,
            org_unit=org.dept_a,
            document_date=archived.document_date,
            lines=[LineInput(1, Decimal(99), Decimal(5))],
        )
    assert actions_since(before) == [AuditAction.DOCUMENT_CHANGE_REFUSED]
    assert Line.objects.get(document=archived, line_no=1).planned_qty == 10


def test_events_for_an_archived_document_are_quarantined_for_ever(archived: Document) -> None:
    result = post(archived, "receipt", 1, 3, external_id="LATE-1")
    assert result.event.status == EventStatus.QUARANTINED
    assert "can never be released" in result.event.quarantine_reason
    assert Line.objects.get(document=archived, line_no=1).fulfilled_qty == 10
    # Never lost: posting it again is a duplicate of the stored event.
    assert post(archived, "receipt", 1, 3, external_id="LATE-1").outcome == "duplicate"


def test_reopen_hold_and_reopen_request_are_refused(
    archived: Document, supervisor: User, operator: User
) -> None:
    before = audit_head()
    with pytest.raises(InvalidTransition, match=r"is archived \(final\): cannot reopen; nothing"):
        document_reopen(actor=supervisor, document=archived, reason_code="wrong_close")
    with pytest.raises(InvalidTransition, match="cannot request a reopen"):
        reopen_request_submit(actor=supervisor, document=archived, reason_code="wrong_close")
    with pytest.raises(InvalidTransition, match=r"is archived \(final\): cannot hold"):
        document_hold(actor=operator, document=archived, reason="dispute")
    with pytest.raises(InvalidTransition, match=r"is archived \(final\): cannot close"):
        document_close(actor=operator, document=archived, reason_code="completed")
    assert audit_head() == before and state(archived) == CloseState.ARCHIVED


def test_archived_documents_show_in_the_queue_when_asked(archived: Document, org: Org) -> None:
    other = ready_document(PO, org.dept_a)
    shown = set(document_queue(QueueFilter(doc_type=PO, close_states=("archived",))))
    assert shown == {archived}
    both = document_queue(QueueFilter(doc_type=PO, close_states=("archived", "open")))
    assert set(both) == {archived, other}


# --- command line -----------------------------------------------------------------------------


def test_cli_run_dry_run_and_type(org: Org, supervisor: User) -> None:
    doc = closed_doc(supervisor, org.dept_a, days_ago=400)
    out = StringIO()
    call_command("archive", "run", "--dry-run", "--type", PO, stdout=out)
    assert "DRY RUN" in out.getvalue() and "would archive" in out.getvalue()
    assert state(doc) == CloseState.CLOSED
    out = StringIO()
    call_command("archive", "run", stdout=out)
    assert "archived" in out.getvalue() and "purchase_order @ *" in out.getvalue()
    assert state(doc) == CloseState.ARCHIVED


def test_cli_run_refuses_unknown_type_and_user(org: Org) -> None:
    with pytest.raises(CommandError, match="nosuch"):
        call_command("archive", "run", "--type", "nosuch", stdout=StringIO())
    with pytest.raises(CommandError, match="no active user 'ghost'"):
        call_command("archive", "run", "--as", "ghost", stdout=StringIO())
    with pytest.raises(CommandError, match="--chunk-size must be at least 1"):
        call_command("archive", "run", "--chunk-size", "0", stdout=StringIO())
