"""Archive (归档, S15): final archiving of long-closed documents, and what the archive page shows.

The archive job moves documents that have been closed for longer than the retention of their
close policy (`ClosePolicy.archive_after_days`, counted from the close date 结案日期) to
`archived` (最终结案): final and read-only. It works like the sweep: per type and policy, in
id-ordered chunks, one transaction per chunk (FOR UPDATE SKIP LOCKED on PostgreSQL), lines and
headers updated in bulk and one DOCUMENT_ARCHIVED audit event per document in the same
transaction. Safe to interrupt and to run twice.

Evidence packs of a period are written in archive_pack.py and checked in archive_verify.py.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.services import SYSTEM_ACTOR, AuditEntry, audit_append
from closeout.closing.models import ArchiveRun, ClosePolicy
from closeout.closing.policies import policy_partitions
from closeout.closing.states import Action
from closeout.closing.transitions import documents_state_set, lines_state_set
from closeout.core.errors import InvalidInput
from closeout.core.locking import skip_locked
from closeout.core.sql import ids_param
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.types import all_specs, spec_for

ARCHIVE_REASON = "retention after close passed"


# --- the archive job --------------------------------------------------------------------------


@dataclass
class ArchiveTally:
    archived: int = 0
    lines_archived: int = 0
    retention_off: int = 0
    per_policy: list[dict[str, Any]] = field(default_factory=list)


def policy_scope_label(policy: ClosePolicy) -> str:
    return f"{policy.doc_type} @ {policy.org_unit.code if policy.org_unit else '*'}"


def archive_cutoff(policy: ClosePolicy, today: date) -> date | None:
    """The latest close date that is due for archiving today; None: the policy never archives."""
    if policy.archive_after_days is None:
        return None
    return today - timedelta(days=policy.archive_after_days)


def _due(doc_type: str, scope: Q, cutoff: date) -> QuerySet[Document]:
    return Document.objects.filter(
        doc_type=doc_type, close_state=CloseState.CLOSED, close_date__lte=cutoff
    ).filter(scope)


def _candidates(
    doc_type: str, scope: Q, cutoff: date, last_id: int, dry_run: bool
) -> QuerySet[Document]:
    qs = _due(doc_type, scope, cutoff).filter(pk__gt=last_id).order_by("pk")
    return qs if dry_run else skip_locked(qs)


def _archive_chunk(
    ids: list[int], policy: ClosePolicy, *, now: datetime, run_tag: str
) -> list[AuditEntry]:
    """Archive a chunk of locked, closed documents: lines and headers in one UPDATE each."""
    # The headers are re-checked in each statement, so only documents still closed change.
    lines = Line.objects.filter(
        document_id__in=ids_param(ids),
        close_state=CloseState.CLOSED,
        document__close_state=CloseState.CLOSED,
    )
    counts = dict(
        lines.order_by()
        .values("document_id")
        .annotate(n=Count("id"))
        .values_list("document_id", "n")
    )
    lines_state_set(lines, Action.ARCHIVE)
    documents_state_set(ids, Action.ARCHIVE, now=now)
    rows = (
        Document.objects.filter(
            pk__in=ids_param(ids), close_state=CloseState.ARCHIVED, state_changed_at=now
        )
        .order_by("pk")
        .values_list("pk", "doc_type", "number", "close_date")
    )
    return [
        AuditEntry(
            action=AuditAction.DOCUMENT_ARCHIVED,
            object_type=AuditObject.DOCUMENT,
            object_id=pk,
            object_repr=f"{doc_type} {number}",
            data={
                "from": CloseState.CLOSED,
                "to": CloseState.ARCHIVED,
                "close_date": close_date,
                "retention_days": policy.archive_after_days,
                "policy": policy_scope_label(policy),
                "lines_archived": counts.get(pk, 0),
            },
            reason=ARCHIVE_REASON,
            request_id=run_tag,
        )
        for pk, doc_type, number, close_date in rows
    ]


def _archive_policy(
    doc_type: str,
    policy: ClosePolicy,
    scope: Q,
    cutoff: date,
    *,
    actor: AbstractBaseUser | None,
    dry_run: bool,
    chunk_size: int,
    run_tag: str,
) -> tuple[int, int]:
    """Archive what one policy governs; returns (documents, lines) archived or due."""
    if dry_run:
        due = _due(doc_type, scope, cutoff)
        return due.count(), Line.objects.filter(
            document__in=due.values("pk"), close_state=CloseState.CLOSED
        ).count()
    documents = lines = 0
    last_id = 0
    while True:
        with transaction.atomic():
            ids = list(
                _candidates(doc_type, scope, cutoff, last_id, dry_run).values_list("pk", flat=True)[
                    :chunk_size
                ]
            )
            if not ids:
                return documents, lines
            last_id = ids[-1]
            now = timezone.now()
            entries = _archive_chunk(ids, policy, now=now, run_tag=run_tag)
            audit_append(actor=actor, entries=entries, at=now)
            documents += len(entries)
            lines += sum(int(e.data["lines_archived"]) for e in entries)


def archive_run(
    *,
    actor: AbstractBaseUser | None = None,
    doc_type: str | None = None,
    dry_run: bool = False,
    chunk_size: int = 2000,
    today: date | None = None,
) -> ArchiveRun:
    """Archive every closed document whose policy's retention after its close date has passed.
    Without an actor it runs as the system (the daily schedule); a person needs
    `policy.manage` (archiving applies the retention of the close policies and is final)."""
    specs = [spec_for(doc_type)] if doc_type else all_specs()
    if chunk_size <= 0:
        raise InvalidInput(
            gettext_noop("chunk size must be at least 1, got %(size)s"),
            params={"size": chunk_size},
            details={"field": "chunk_size"},
        )
    if actor is not None:
        require(actor, Perm.POLICY_MANAGE, what="the archive (归档)")
    day = today or timezone.localdate()
    run = ArchiveRun.objects.create(
        started_at=timezone.now(),
        doc_type=doc_type or "",
        dry_run=dry_run,
        actor_name=actor.get_username() if actor is not None else SYSTEM_ACTOR,
    )
    tally = ArchiveTally()
    for spec in specs:
        for policy, scope in policy_partitions(spec.code):
            cutoff = archive_cutoff(policy, day)
            if cutoff is None:
                off = Document.objects.filter(doc_type=spec.code, close_state=CloseState.CLOSED)
                tally.retention_off += off.filter(scope).count()
                continue
            documents, lines = _archive_policy(
                spec.code,
                policy,
                scope,
                cutoff,
                actor=actor,
                dry_run=dry_run,
                chunk_size=chunk_size,
                run_tag=f"archive-run:{run.pk}",
            )
            tally.archived += documents
            tally.lines_archived += lines
            tally.per_policy.append(
                {
                    "policy": policy_scope_label(policy),
                    "retention_days": policy.archive_after_days,
                    "closed_on_or_before": cutoff.isoformat(),
                    "archived": documents,
                }
            )
    run.finished_at = timezone.now()
    run.archived, run.lines_archived = tally.archived, tally.lines_archived
    run.retention_off, run.per_policy = tally.retention_off, tally.per_policy
    run.save()
    return run


# --- selectors for the page -----------------------------------------------------------------


@dataclass(frozen=True)
class RetentionRow:
    policy: ClosePolicy
    scope: str
    retention_days: int | None
    closed_due: int
    archived: int


def archive_retention_overview(today: date | None = None) -> list[RetentionRow]:
    """Per policy: its retention, the closed documents now due, and those already archived."""
    day = today or timezone.localdate()
    rows: list[RetentionRow] = []
    for spec in all_specs():
        for policy, scope in policy_partitions(spec.code):
            cutoff = archive_cutoff(policy, day)
            states = Document.objects.filter(doc_type=spec.code).filter(scope)
            rows.append(
                RetentionRow(
                    policy=policy,
                    scope=policy_scope_label(policy),
                    retention_days=policy.archive_after_days,
                    closed_due=_due(spec.code, scope, cutoff).count() if cutoff else 0,
                    archived=states.filter(close_state=CloseState.ARCHIVED).count(),
                )
            )
    return rows


def archive_runs_recent(limit: int = 10) -> list[ArchiveRun]:
    return list(ArchiveRun.objects.order_by("-started_at", "-pk")[:limit])


def archive_packs_exported(limit: int = 10) -> list[AuditEvent]:
    """The latest pack exports, as the audit chain recorded them."""
    return list(
        AuditEvent.objects.filter(action=AuditAction.ARCHIVE_PACK_EXPORTED).order_by("-seq")[:limit]
    )
