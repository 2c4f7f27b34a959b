"""Automatic close sweep (自动结案), set-based.

For each document type and policy, open documents are taken in id-ordered chunks, one
transaction per chunk (rows locked with FOR UPDATE SKIP LOCKED on PostgreSQL, so workers
never take the same document). Every rule is evaluated for the whole chunk in two queries; the
documents that pass every rule are closed with a few bulk statements and their audit events
written in one insert. Safe to interrupt (a chunk commits or not) and to run twice.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    IntegerField,
    Max,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.models import ClosePolicy, Severity, SweepRun
from closeout.closing.policies import policy_partitions
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, effective_rules
from closeout.closing.services import AUTO_REASON, close_documents_bulk
from closeout.closing.types import close_spec_for
from closeout.core.locking import skip_locked
from closeout.core.metrics import observe_sweep
from closeout.core.notice_kinds import NoticeKind
from closeout.core.sql import ids_param
from closeout.documents.models import CloseKind, CloseState, Document, Line
from closeout.documents.types import DocTypeSpec, all_specs, spec_for

EXCEPTION_SAMPLE = 200


@dataclass
class SweepTally:
    examined: int = 0
    closed: int = 0
    closed_by_type: Counter[str] = field(default_factory=Counter)
    lines_closed: int = 0
    exception: int = 0
    warning_only: int = 0
    blocked: int = 0
    not_due: int = 0
    policy_off: int = 0
    rule_failures: Counter[str] = field(default_factory=Counter)
    exception_sample: list[str] = field(default_factory=list)


def _count_failures(
    rules: list[tuple[Rule, Severity]], flags: tuple[bool, ...], tally: SweepTally, doc_type: str
) -> None:
    if any(flags):
        for (rule, _sev), flag in zip(rules, flags, strict=True):
            if flag:
                tally.rule_failures[f"{doc_type}.{rule.code}"] += 1


def _classify(rules: list[tuple[Rule, Severity]], flags: tuple[bool, ...]) -> str:
    failed = [(rule, sev) for (rule, sev), flag in zip(rules, flags, strict=True) if flag]
    severities = {sev for rule, sev in failed if not rule.auto_only}
    if Severity.BLOCKING in severities:
        return "blocked"
    if Severity.EXCEPTION in severities:
        return "exception"
    if Severity.WARNING in severities:
        return "warning"
    if failed:
        return "not_due"
    return "ready"


def _candidates(doc_type: str, scope: Q, last_id: int, dry_run: bool) -> QuerySet[Document]:
    qs = Document.objects.filter(doc_type=doc_type, close_state=CloseState.OPEN, pk__gt=last_id)
    qs = qs.filter(scope).order_by("pk")
    return qs if dry_run else skip_locked(qs)


def _failures(
    policy: ClosePolicy, rules: list[tuple[Rule, Severity]], ids: list[int]
) -> list[tuple[int, str, tuple[bool, ...]]]:
    """Every rule for a chunk of documents: (id, number, failed flag per rule).

    Each rule's own `failing` condition, evaluated in two queries: document-scope rules on the
    documents, line-scope rules over the chunk's lines grouped by document (a document fails a
    line rule when one of its lines in close scope fails it — what `Rule.document_failing`
    says with EXISTS; grouping reads each line once instead of once per rule)."""
    line_rules = [i for i, (rule, _sev) in enumerate(rules) if rule.scope is Scope.LINE]
    doc_flags = {
        f"r{i}": ExpressionWrapper(rule.failing(policy), output_field=BooleanField())
        for i, (rule, _sev) in enumerate(rules)
        if rule.scope is Scope.DOCUMENT
    }
    line_flags = {
        f"r{i}": Max(
            Case(
                When(rules[i][0].failing(policy), then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        for i in line_rules
    }
    # Where each rule's flag is in the rows below: ("d", position in the document row) or
    # ("l", position in the line group's row), in rule order.
    doc_keys, line_keys = list(doc_flags), list(line_flags)
    where = [
        ("d", doc_keys.index(f"r{i}")) if f"r{i}" in doc_flags else ("l", line_keys.index(f"r{i}"))
        for i in range(len(rules))
    ]
    failing_lines: dict[int, tuple[Any, ...]] = {}
    if line_flags:
        grouped = (
            Line.objects.filter(document_id__in=ids_param(ids), close_state__in=LINE_SCOPE)
            .order_by()
            .values("document_id")
            .annotate(**line_flags)
            .values_list("document_id", *line_flags)
        )
        failing_lines = {doc_id: tuple(values) for doc_id, *values in grouped}
    docs = (
        Document.objects.filter(pk__in=ids_param(ids))
        .annotate(**doc_flags)
        .order_by("pk")
        .values_list("pk", "number", *doc_flags)
    )
    no_lines = (0,) * len(line_keys)
    result = []
    for pk, number, *by_doc in docs:
        by_line = failing_lines.get(pk, no_lines)
        flags = tuple(bool(by_doc[j] if src == "d" else by_line[j]) for src, j in where)
        result.append((pk, number, flags))
    return result


def _sweep_policy(
    spec: DocTypeSpec,
    policy: ClosePolicy,
    scope: Q,
    *,
    dry_run: bool,
    chunk_size: int,
    tally: SweepTally,
) -> None:
    rules = effective_rules(close_spec_for(spec.code).rules, policy, for_auto=True)
    last_id = 0
    while True:
        with transaction.atomic():
            ids = list(
                _candidates(spec.code, scope, last_id, dry_run).values_list("pk", flat=True)[
                    :chunk_size
                ]
            )
            if not ids:
                return
            last_id = ids[-1]
            ready: list[int] = []
            # Most documents share a few patterns of failed rules: each pattern is classified
            # once per chunk, and counted once per document as before.
            verdicts: dict[tuple[bool, ...], str] = {}
            for pk, number, row_flags in _failures(policy, rules, ids):
                verdict = verdicts.get(row_flags)
                if verdict is None:
                    verdict = verdicts[row_flags] = _classify(rules, row_flags)
                _count_failures(rules, row_flags, tally, spec.code)
                tally.examined += 1
                if verdict == "ready":
                    ready.append(pk)
                elif verdict == "exception":
                    tally.exception += 1
                    if len(tally.exception_sample) < EXCEPTION_SAMPLE:
                        tally.exception_sample.append(f"{spec.code} {number}")
                elif verdict == "warning":
                    tally.warning_only += 1
                elif verdict == "blocked":
                    tally.blocked += 1
                else:
                    tally.not_due += 1
            tally.closed += len(ready)
            tally.closed_by_type[spec.code] += len(ready)
            if dry_run or not ready:
                continue
            entries = close_documents_bulk(
                document_ids=ready,
                doc_type=spec.code,
                kind=CloseKind.AUTO,
                reason=AUTO_REASON,
                now=timezone.now(),
            )
            tally.lines_closed += sum(int(e.data["lines_closed"]) for e in entries)
            audit_append(actor=None, entries=entries)


def sweep_run(
    *,
    doc_type: str | None = None,
    dry_run: bool = False,
    chunk_size: int = 2000,
    within: Q | None = None,
) -> SweepRun:
    """Close every open document whose rules all pass; report the exception queue.

    `within` (dry runs only) is a condition on Document, the scope of the one who asks: only
    those documents are examined, counted and named, and the run is not stored (it is that
    person's view, not the company's)."""
    if within is not None and not dry_run:
        raise ValueError("a sweep limited to a scope can only be a dry run")
    specs = [spec_for(doc_type)] if doc_type else all_specs()
    run = SweepRun(started_at=timezone.now(), doc_type=doc_type or "", dry_run=dry_run)
    tally = SweepTally()
    for spec in specs:
        for policy, partition in policy_partitions(spec.code):
            scope = partition if within is None else partition & within
            if not policy.auto_close_enabled:
                tally.policy_off += (
                    Document.objects.filter(doc_type=spec.code, close_state=CloseState.OPEN)
                    .filter(scope)
                    .count()
                )
                continue
            _sweep_policy(spec, policy, scope, dry_run=dry_run, chunk_size=chunk_size, tally=tally)
    if not dry_run and within is None:
        from closeout.closing.dimension_services import dimensions_sweep

        # Then the close dimensions (收货关闭 …) that pass their own rules on open lines.
        dimensions_sweep(doc_type=doc_type)
    run.finished_at = timezone.now()
    run.examined, run.closed, run.lines_closed = tally.examined, tally.closed, tally.lines_closed
    run.exception_queue, run.warning_only = tally.exception, tally.warning_only
    run.blocked, run.not_due, run.policy_off = tally.blocked, tally.not_due, tally.policy_off
    run.rule_failures = dict(tally.rule_failures.most_common())
    run.exception_sample = tally.exception_sample
    if within is not None:
        return run
    with transaction.atomic():
        run.save()
        if not dry_run:
            audit_append(
                actor=None,
                entries=[
                    AuditEntry(
                        action=AuditAction.SWEEP_RUN,
                        object_type=AuditObject.SWEEP,
                        object_id=run.pk,
                        object_repr=str(run),
                        data={
                            "closed": run.closed,
                            "exception_queue": run.exception_queue,
                            "blocked": run.blocked,
                            "examined": run.examined,
                        },
                    )
                ],
            )
            if run.closed:
                _notify_digest(run, tally.closed_by_type)
    observe_sweep(
        doc_type=run.doc_type,
        dry_run=dry_run,
        seconds=(run.finished_at - run.started_at).total_seconds(),
        closed=run.closed,
    )
    return run


def _notify_digest(run: SweepRun, closed_by_type: Counter[str]) -> None:
    """One message per person (not one per document): operators hear of the types their
    grants cover, supervisors of all."""
    from closeout.access.selectors import users_with_role
    from closeout.notifications.services import notify

    counts_for: dict[int, dict[str, int]] = {}
    users: dict[int, Any] = {}
    for doc_type, count in closed_by_type.items():
        if not count:
            continue
        for role in ("operator", "supervisor"):
            for user in users_with_role(role, org_unit=None, doc_type=doc_type):
                users[user.pk] = user
                counts_for.setdefault(user.pk, {})[doc_type] = count
    for pk, counts in counts_for.items():
        notify(
            recipients=[users[pk]],
            kind=NoticeKind.AUTO_CLOSE_DIGEST,
            context={
                "counts": counts,
                "run_id": run.pk,
                "examined": run.examined,
                "lines_closed": run.lines_closed,
                "exception_queue": run.exception_queue,
                "blocked": run.blocked,
            },
            link="/",
        )
