"""Reads for closing: the pre-close checklist (S5), readiness filters, verdicts, close previews
and open commitments. The work queue's filter is in `closing.queue`."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
)
from django.utils.translation import gettext_noop

from closeout.closing.models import ClosePolicy, Severity
from closeout.closing.policies import policy_for
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, effective_rules, num, open_qty_expr
from closeout.closing.types import close_spec_for
from closeout.core.errors import InvalidInput
from closeout.documents.models import Document, Line
from closeout.documents.types import Commitment, all_specs

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from closeout.closing.risk import RiskWarning


@dataclass
class RuleCheck:
    rule: Rule
    severity: Severity
    passed: bool
    measured: dict[str, Any]
    threshold: str
    failing_lines: list[int] = field(default_factory=list)
    line_values: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Checklist:
    document: Document
    policy: ClosePolicy
    checks: list[RuleCheck]
    for_auto: bool
    line_nos: list[int] | None
    # Risk warnings (风险预警, S24) of a manual close: advisory, never part of the verdict;
    # filled by `close_checklist_with_risks` only.
    risks: list["RiskWarning"] = field(default_factory=list)

    @property
    def risk_flags(self) -> list["RiskWarning"]:
        return [r for r in self.risks if r.flagged]

    def failures(self, severity: Severity) -> list[RuleCheck]:
        return [c for c in self.checks if not c.passed and c.severity == severity]

    @property
    def blocking(self) -> list[RuleCheck]:
        return self.failures(Severity.BLOCKING)

    @property
    def exceptions(self) -> list[RuleCheck]:
        return self.failures(Severity.EXCEPTION)

    @property
    def warnings(self) -> list[RuleCheck]:
        return self.failures(Severity.WARNING)

    @property
    def verdict(self) -> str:
        """ready (every rule passes), warning, exception (closable by hand), or blocked."""
        if self.blocking:
            return "blocked"
        if self.exceptions:
            return "exception"
        if self.warnings:
            return "warning"
        return "ready"


def _flag(q: Q) -> ExpressionWrapper[Any]:
    return ExpressionWrapper(q, output_field=BooleanField())


def close_checklist_for(
    document: Document, *, line_nos: list[int] | None = None, for_auto: bool = False
) -> Checklist:
    """Evaluate every rule of the document's policy, in the database, with the same conditions
    the sweep uses. With `line_nos`, only those lines are checked and document-level rules are
    left to the close of the whole document."""
    close = close_spec_for(document.doc_type)
    policy = policy_for(document.doc_type, document.org_unit)
    rules = effective_rules(close.rules, policy, for_auto=for_auto)
    lines = Line.objects.filter(document_id=document.pk, close_state__in=LINE_SCOPE)
    whole = line_nos is None or set(line_nos) >= set(lines.values_list("line_no", flat=True))
    if line_nos is not None:
        lines = lines.filter(line_no__in=line_nos)
    line_rules, doc_rules = rules_by_scope(rules)
    line_rows = annotated_rows(lines.order_by("line_no"), line_rules, policy, "line_no")
    doc_row = annotated_rows(Document.objects.filter(pk=document.pk), doc_rules, policy, "pk")
    checks = rule_checks(rules, policy, line_rows, doc_row[0] if whole else None)
    return Checklist(document, policy, checks, for_auto, line_nos)


RuleAt = tuple[int, Rule, Severity]


def rules_by_scope(rules: list[tuple[Rule, Severity]]) -> tuple[list[RuleAt], list[RuleAt]]:
    """The line rules and the document rules of a policy, each with its place in `rules`."""
    line_rules = [(i, r, s) for i, (r, s) in enumerate(rules) if r.scope is Scope.LINE]
    doc_rules = [(i, r, s) for i, (r, s) in enumerate(rules) if r.scope is Scope.DOCUMENT]
    return line_rules, doc_rules


def rule_checks(
    rules: list[tuple[Rule, Severity]],
    policy: ClosePolicy,
    line_rows: list[dict[str, Any]],
    doc_row: dict[str, Any] | None,
) -> list[RuleCheck]:
    """The checklist's checks from the annotated rows of the lines checked and of the document
    (None: a close of some lines, which leaves document rules to the whole document's close)."""
    checks: list[RuleCheck] = []
    for i, (rule, severity) in enumerate(rules):
        if rule.scope is Scope.LINE:
            failing = [row["line_no"] for row in line_rows if row[f"r{i}"]]
            values = {row["line_no"]: _measures_of(row, i) for row in line_rows}
            measured = _totals(values.values())
            checks.append(
                RuleCheck(
                    rule, severity, not failing, measured, rule.threshold(policy), failing, values
                )
            )
        elif rule.scope is Scope.DOCUMENT and doc_row is not None:
            passed = not doc_row[f"r{i}"]
            measures = _measures_of(doc_row, i)
            checks.append(RuleCheck(rule, severity, passed, measures, rule.threshold(policy)))
    return checks


def close_checklist_with_risks(
    document: Document,
    *,
    actor: "AbstractBaseUser | None",
    reason_code: str = "",
    line_nos: list[int] | None = None,
) -> Checklist:
    """The checklist of a manual close with its risk warnings (closeout.closing.risk)."""
    from closeout.closing.risk import close_risks_for

    checklist = close_checklist_for(document, line_nos=line_nos)
    checklist.risks = close_risks_for(
        document, actor=actor, reason_code=reason_code, line_nos=line_nos
    )
    return checklist


def annotated_rows(
    qs: QuerySet[Any], rules: list[RuleAt], policy: ClosePolicy, *keys: str
) -> list[dict[str, Any]]:
    """The rows of `qs` (lines or documents) with each rule's failure flag and measures."""
    annotations: dict[str, Any] = {}
    for i, rule, _severity in rules:
        annotations[f"r{i}"] = _flag(rule.failing(policy))
        for name, expr in rule.measures(policy).items():
            annotations[f"m{i}__{name}"] = expr
    if not annotations:
        return list(qs.values(*keys)) if keys != ("pk",) else [{"pk": 0}]
    return list(qs.annotate(**annotations).values(*keys, *annotations))


def _shown(value: Any) -> Any:
    """Measured values as people read them: SQLite computes decimals in binary floating point,
    so results are rounded to the 4 places quantities and amounts are stored with."""
    if isinstance(value, float):
        value = Decimal(str(value))
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.0001")).normalize() + 0
    return value


def _measures_of(row: dict[str, Any], i: int) -> dict[str, Any]:
    prefix = f"m{i}__"
    return {k[len(prefix) :]: _shown(v) for k, v in row.items() if k.startswith(prefix)}


def _totals(rows: Any) -> dict[str, Any]:
    totals: dict[str, Any] = {}
    for values in rows:
        for name, value in values.items():
            if isinstance(value, Decimal | int) and not isinstance(value, bool):
                totals[name] = totals.get(name, Decimal(0)) + value
    return totals


def documents_failing(doc_type: str, rule: Rule, policy: ClosePolicy) -> QuerySet[Document]:
    """Open documents of a type where one rule fails (the queue's filters use this)."""
    return Document.objects.filter(doc_type=doc_type, close_state="open").filter(
        rule.document_failing(policy)
    )


def documents_ready_to_close(doc_type: str, *, for_auto: bool = False) -> QuerySet[Document]:
    """Open documents of a type whose every rule passes under their own policy."""
    return Document.objects.filter(doc_type=doc_type, close_state="open").filter(
        verdict_condition(doc_type, "ready", for_auto=for_auto)
    )


@dataclass(frozen=True)
class ItemCommitment:
    item_id: int
    on_order: Decimal
    reserved: Decimal


def open_commitments_by_item(item_ids: list[int] | None = None) -> dict[int, ItemCommitment]:
    """Per item, the quantity still on order from open purchase-order lines and reserved by open
    sales-order lines: the unfulfilled remainder (never negative) of lines not closed, nor closed
    for receiving (shipping): that close released it (closing.dimensions)."""
    from closeout.closing.dimensions import releasing_closed

    kinds: dict[str, Commitment] = {
        str(spec.code): spec.commitment for spec in all_specs() if spec.commitment
    }
    lines = Line.objects.filter(
        close_state__in=LINE_SCOPE, item_id__isnull=False, document__doc_type__in=list(kinds)
    ).exclude(releasing_closed())
    if item_ids is not None:
        lines = lines.filter(item_id__in=item_ids)
    rows = lines.values("item_id", "document__doc_type").annotate(open_qty=Sum(open_qty_expr()))
    result: dict[int, dict[str, Decimal]] = {}
    for row in rows:
        bucket = result.setdefault(row["item_id"], {"on_order": Decimal(0), "reserved": Decimal(0)})
        bucket[str(kinds[row["document__doc_type"]])] += row["open_qty"] or Decimal(0)
    return {item: ItemCommitment(item, v["on_order"], v["reserved"]) for item, v in result.items()}


@dataclass(frozen=True)
class DocumentVerdict:
    """The rules one document fails, from the set-based evaluation of many documents."""

    document_id: int
    failing: list[tuple[Rule, Severity]]

    @property
    def verdict(self) -> str:
        """ready, warning, exception, blocked, or not_due (only auto-close timing fails)."""
        severities = {sev for rule, sev in self.failing if not rule.auto_only}
        for severity, name in (
            (Severity.BLOCKING, "blocked"),
            (Severity.EXCEPTION, "exception"),
            (Severity.WARNING, "warning"),
        ):
            if severity in severities:
                return name
        return "not_due" if self.failing else "ready"

    def codes(self, severity: Severity | None = None) -> list[str]:
        return [r.code for r, s in self.failing if severity is None or s == severity]


def verdicts_for(
    document_ids: list[int], *, doc_type: str, for_auto: bool = False
) -> dict[int, DocumentVerdict]:
    """Evaluate every rule for many documents of one type in one query per policy: the same
    rule conditions as the checklist and the sweep."""
    from closeout.closing.policies import policy_partitions

    close = close_spec_for(doc_type)
    result: dict[int, DocumentVerdict] = {}
    for policy, scope in policy_partitions(doc_type):
        rules = effective_rules(close.rules, policy, for_auto=for_auto)
        flags = {
            f"r{i}": _flag(rule.document_failing(policy)) for i, (rule, _s) in enumerate(rules)
        }
        rows = Document.objects.filter(pk__in=document_ids).filter(scope)
        for pk, *values in rows.annotate(**flags).values_list("pk", *flags):
            failing = [rules[i] for i, failed in enumerate(values) if failed]
            result[pk] = DocumentVerdict(pk, failing)
    return result


def released_value_for(document_ids: list[int], *, doc_type: str) -> dict[int, Decimal]:
    """What closing each document's open lines would release (company currency)."""
    close = close_spec_for(doc_type)
    rows = (
        Line.objects.filter(document_id__in=document_ids, close_state="open")
        .values("document_id")
        .annotate(v=Sum(num(close.released_value() * F("document__exchange_rate"))))
        .values_list("document_id", "v")
    )
    return {pk: Decimal(v or 0) for pk, v in rows}


def verdict_condition(doc_type: str, verdict: str, *, for_auto: bool = False) -> Q:
    """Documents whose checklist verdict is `verdict` (ready, warning, exception, blocked), as
    one condition built from the rule definitions of each policy."""
    from closeout.closing.policies import policy_partitions

    close = close_spec_for(doc_type)
    condition = Q(pk__in=[])
    for policy, scope in policy_partitions(doc_type):
        by_severity: dict[Severity, Q] = {s: Q(pk__in=[]) for s in Severity}
        for rule, severity in effective_rules(close.rules, policy, for_auto=for_auto):
            by_severity[severity] |= rule.document_failing(policy)
        blocking, exception, warning = (
            by_severity[Severity.BLOCKING],
            by_severity[Severity.EXCEPTION],
            by_severity[Severity.WARNING],
        )
        wanted = {
            "ready": ~blocking & ~exception & ~warning,
            "warning": ~blocking & ~exception & warning,
            "exception": ~blocking & exception,
            "blocked": blocking,
        }.get(verdict)
        if wanted is None:
            raise InvalidInput(
                gettext_noop(
                    "unknown verdict '%(verdict)s'; use ready, warning, exception or blocked"
                ),
                details={"field": "verdict"},
                params={"verdict": verdict},
            )
        condition |= scope & wanted
    if verdict == "blocked":
        condition &= Q(pk__in=_blocked_candidates(doc_type, for_auto=for_auto))
    return condition


def _blocked_candidates(doc_type: str, *, for_auto: bool) -> QuerySet[Document, Any]:
    """Ids of documents failing any blocking rule of any policy, as one UNION of per-rule
    lookups. Blocked documents are usually few (held lines, quarantined events): PostgreSQL then
    starts from each rule's small index instead of testing every open document in turn."""
    from closeout.closing.policies import policy_partitions

    close = close_spec_for(doc_type)
    arms = [
        Document.objects.filter(doc_type=doc_type).filter(rule.document_failing(policy))
        for policy, _scope in policy_partitions(doc_type)
        for rule, severity in effective_rules(close.rules, policy, for_auto=for_auto)
        if severity == Severity.BLOCKING
    ]
    if not arms:
        return Document.objects.none().values("pk")
    ids = [arm.values("pk") for arm in arms]
    return ids[0].union(*ids[1:], all=True) if len(ids) > 1 else ids[0]


__all__ = [
    "Checklist",
    "DocumentVerdict",
    "ItemCommitment",
    "RuleCheck",
    "close_checklist_for",
    "close_checklist_with_risks",
    "documents_failing",
    "documents_ready_to_close",
    "open_commitments_by_item",
    "released_value_for",
    "verdict_condition",
    "verdicts_for",
]
