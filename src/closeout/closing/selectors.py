"""Reads for closing: the pre-close checklist (S5), readiness filters and open commitments."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet, Sum

from closeout.closing.models import ClosePolicy, Severity
from closeout.closing.policies import policy_for
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, effective_rules, open_qty_expr
from closeout.documents.models import DocType, Document, Line
from closeout.documents.types import Commitment, all_specs, spec_for


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
    spec = spec_for(document.doc_type)
    policy = policy_for(document.doc_type, document.org_unit)
    rules = effective_rules(spec.rules, policy, for_auto=for_auto)
    lines = Line.objects.filter(document_id=document.pk, close_state__in=LINE_SCOPE)
    whole = line_nos is None or set(line_nos) >= set(lines.values_list("line_no", flat=True))
    if line_nos is not None:
        lines = lines.filter(line_no__in=line_nos)
    checks: list[RuleCheck] = []
    line_rules = [(i, r, s) for i, (r, s) in enumerate(rules) if r.scope is Scope.LINE]
    doc_rules = [(i, r, s) for i, (r, s) in enumerate(rules) if r.scope is Scope.DOCUMENT]
    line_rows = _annotated_rows(lines.order_by("line_no"), line_rules, policy, "line_no")
    doc_row = _annotated_rows(Document.objects.filter(pk=document.pk), doc_rules, policy, "pk")
    for i, rule, severity in sorted(line_rules + doc_rules, key=lambda t: t[0]):
        if rule.scope is Scope.LINE:
            failing = [row["line_no"] for row in line_rows if row[f"r{i}"]]
            values = {row["line_no"]: _measures_of(row, i) for row in line_rows}
            measured = _totals(values.values())
            checks.append(
                RuleCheck(
                    rule, severity, not failing, measured, rule.threshold(policy), failing, values
                )
            )
        elif whole:
            row = doc_row[0]
            checks.append(
                RuleCheck(
                    rule, severity, not row[f"r{i}"], _measures_of(row, i), rule.threshold(policy)
                )
            )
    return Checklist(document, policy, checks, for_auto, line_nos)


def _annotated_rows(
    qs: QuerySet[Any], rules: list[tuple[int, Rule, Severity]], policy: ClosePolicy, key: str
) -> list[dict[str, Any]]:
    annotations: dict[str, Any] = {}
    for i, rule, _severity in rules:
        annotations[f"r{i}"] = _flag(rule.failing(policy))
        for name, expr in rule.measures(policy).items():
            annotations[f"m{i}__{name}"] = expr
    if not annotations:
        return list(qs.values(key)) if key != "pk" else [{"pk": 0}]
    return list(qs.annotate(**annotations).values(key, *annotations))


def _measures_of(row: dict[str, Any], i: int) -> dict[str, Any]:
    prefix = f"m{i}__"
    return {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}


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
    from closeout.closing.policies import policy_partitions

    spec = spec_for(doc_type)
    condition = Q(pk__in=[])
    for policy, scope in policy_partitions(doc_type):
        passing = scope
        for rule, _severity in effective_rules(spec.rules, policy, for_auto=for_auto):
            passing &= ~rule.document_failing(policy)
        condition |= passing
    return Document.objects.filter(doc_type=doc_type, close_state="open").filter(condition)


@dataclass(frozen=True)
class ItemCommitment:
    item_id: int
    on_order: Decimal
    reserved: Decimal


def open_commitments_by_item(item_ids: list[int] | None = None) -> dict[int, ItemCommitment]:
    """Per item, the quantity still on order from open purchase-order lines and reserved by open
    sales-order lines: the unfulfilled remainder (never negative) of lines not closed."""
    kinds: dict[str, Commitment] = {
        str(spec.code): spec.commitment for spec in all_specs() if spec.commitment
    }
    lines = Line.objects.filter(
        close_state__in=LINE_SCOPE, item_id__isnull=False, document__doc_type__in=list(kinds)
    )
    if item_ids is not None:
        lines = lines.filter(item_id__in=item_ids)
    rows = lines.values("item_id", "document__doc_type").annotate(open_qty=Sum(open_qty_expr()))
    result: dict[int, dict[str, Decimal]] = {}
    for row in rows:
        bucket = result.setdefault(row["item_id"], {"on_order": Decimal(0), "reserved": Decimal(0)})
        bucket[str(kinds[row["document__doc_type"]])] += row["open_qty"] or Decimal(0)
    return {item: ItemCommitment(item, v["on_order"], v["reserved"]) for item, v in result.items()}


__all__ = [
    "Checklist",
    "Commitment",
    "DocType",
    "ItemCommitment",
    "RuleCheck",
    "close_checklist_for",
    "documents_failing",
    "documents_ready_to_close",
    "open_commitments_by_item",
]
