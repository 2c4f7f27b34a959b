"""What the checks of an import file's rows read (导入结案指令, validate), set-based: the
documents by (type, number), their lines and the rule failures of documents and lines (two
queries per policy and chunk), and for dimension rows the dimensions closed and failing. The
rows are judged in `import_checks`; the execution reads the rules the same way."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, F

from closeout.batches.import_parse import RowCheck
from closeout.closing.dimensions import dimension_get
from closeout.closing.models import ClosePolicy, LineDimensionClose, Severity
from closeout.closing.policies import policy_partitions
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, effective_rules, num
from closeout.closing.types import close_spec_for
from closeout.core.models import OrgUnit
from closeout.core.sql import ids_param, texts_param
from closeout.documents.models import CloseState, Document, Line

CHUNK = 2000


# --- the documents, their lines and rules, set-based ---------------------------------------


@dataclass(frozen=True)
class DocRow:
    """What the checks read of a document: a plain row (tens of thousands of model instances
    cost more than the whole query)."""

    pk: int
    doc_type: str
    number: str
    org_unit: OrgUnit
    close_state: str
    document_date: date
    close_date: date | None
    total_amount_company: Decimal
    released_value_company: Decimal
    company: str = ""

    @property
    def org_unit_id(self) -> int:
        return self.org_unit.pk

    @property
    def label(self) -> str:
        return f"{self.doc_type} {self.number}"

    def model(self) -> Document:
        """An unsaved copy for the route conditions (which read these fields only)."""
        return Document(
            pk=self.pk,
            doc_type=self.doc_type,
            number=self.number,
            org_unit=self.org_unit,
            close_state=self.close_state,
            document_date=self.document_date,
            close_date=self.close_date,
            total_amount_company=self.total_amount_company,
            released_value_company=self.released_value_company,
        )


DOC_FIELDS = (
    "pk",
    "doc_type",
    "number",
    "org_unit_id",
    "close_state",
    "document_date",
    "close_date",
    "total_amount_company",
    "released_value_company",
    "company__unit__code",
)


def load_documents(rows: list[RowCheck]) -> dict[tuple[str, str], list[DocRow]]:
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.doc_type and row.number:
            wanted[row.doc_type].add(row.number)
    found: list[tuple[Any, ...]] = []
    for doc_type, numbers in wanted.items():
        listed = sorted(numbers)
        for start in range(0, len(listed), 5000):
            part = listed[start : start + 5000]
            found += Document.objects.filter(
                doc_type=doc_type, number__in=texts_param(part)
            ).values_list(*DOC_FIELDS)
    units = OrgUnit.objects.in_bulk({values[3] for values in found})
    documents: dict[tuple[str, str], list[DocRow]] = defaultdict(list)
    for pk, doc_type, number, unit, *rest in found:
        documents[doc_type, number].append(DocRow(pk, doc_type, number, units[unit], *rest))
    return documents


@dataclass
class Facts:
    """What the rules say about the documents of the close and request rows."""

    policy: dict[int, ClosePolicy] = field(default_factory=dict)
    doc_failing: dict[int, list[tuple[Rule, Severity]]] = field(default_factory=dict)
    # document -> line number -> (close state, released value in company currency)
    lines: dict[int, dict[int, tuple[str, Decimal]]] = field(default_factory=dict)
    line_failing: dict[tuple[int, int], list[tuple[Rule, Severity]]] = field(default_factory=dict)
    # (document, line number) -> the line's id
    line_ids: dict[tuple[int, int], int] = field(default_factory=dict)


def _flag(condition: Any) -> ExpressionWrapper[Any]:
    return ExpressionWrapper(condition, output_field=BooleanField())


def rule_facts(doc_type: str, ids: list[int], facts: Facts) -> None:
    """Every rule of the documents' policies, with each rule's own `failing` condition: the
    document rules on the documents, the line rules on each line (so that a row naming some
    lines is judged on those lines, as the checklist does), two queries per policy and chunk."""
    close = close_spec_for(doc_type)
    released = num(close.released_value() * F("document__exchange_rate"))
    for policy, scope in policy_partitions(doc_type):
        rules = effective_rules(close.rules, policy, for_auto=False)
        doc_rules = [(r, s) for r, s in rules if r.scope is Scope.DOCUMENT]
        line_rules = [(r, s) for r, s in rules if r.scope is Scope.LINE]
        doc_flags = {f"r{i}": _flag(r.failing(policy)) for i, (r, _s) in enumerate(doc_rules)}
        line_flags = {f"r{i}": _flag(r.failing(policy)) for i, (r, _s) in enumerate(line_rules)}
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            governed = []
            rows = (
                Document.objects.filter(pk__in=ids_param(part))
                .filter(scope)
                .annotate(**doc_flags)
                .values_list("pk", *doc_flags)
            )
            for pk, *flags in rows:
                facts.policy[pk] = policy
                facts.doc_failing[pk] = [doc_rules[i] for i, f in enumerate(flags) if f]
                facts.lines[pk] = {}
                governed.append(pk)
            if not governed:
                continue
            lines = (
                Line.objects.filter(document_id__in=ids_param(governed))
                .annotate(rv=released, **line_flags)
                .values_list("pk", "document_id", "line_no", "close_state", "rv", *line_flags)
            )
            for line_id, doc_id, line_no, state, value, *flags in lines:
                facts.line_ids[doc_id, line_no] = line_id
                open_value = Decimal(str(value or 0)) if state == CloseState.OPEN else Decimal(0)
                facts.lines[doc_id][line_no] = (state, open_value)
                if state in LINE_SCOPE:
                    facts.line_failing[(doc_id, line_no)] = (
                        [line_rules[i] for i, f in enumerate(flags) if f] if any(flags) else []
                    )


@dataclass
class DimensionFacts:
    """For the dimension rows: the dimensions each line has closed, and the lines on which the
    row's dimension rules fail (one query, and one per type, dimension and policy)."""

    closed: dict[int, set[str]] = field(default_factory=dict)
    # (dimension, line id) where the dimension's rules fail
    failing: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def load(cls, rows: list[RowCheck], facts: Facts) -> "DimensionFacts":
        result = cls()
        wanted: dict[tuple[str, str, int], set[int]] = defaultdict(set)
        policies: dict[int, ClosePolicy] = {}
        lines_of: dict[int, set[int]] = defaultdict(set)
        for (doc_id, _no), line_id in facts.line_ids.items():
            lines_of[doc_id].add(line_id)
        for row in rows:
            document = row.document
            policy = facts.policy.get(document.pk) if document is not None else None
            if document is None or policy is None:
                continue
            policies[policy.pk] = policy
            wanted[document.doc_type, row.dimension, policy.pk] |= lines_of[document.pk]
        every = sorted(set().union(*wanted.values())) if wanted else []
        for start in range(0, len(every), CHUNK):
            part = ids_param(every[start : start + CHUNK])
            for line_id, code in LineDimensionClose.objects.filter(line_id__in=part).values_list(
                "line_id", "dimension"
            ):
                result.closed.setdefault(line_id, set()).add(code)
        for (doc_type, code, policy_pk), line_ids in wanted.items():
            failing = dimension_get(doc_type, code).line_failing(doc_type, policies[policy_pk])
            result.failing |= {
                (code, pk)
                for pk in Line.objects.filter(pk__in=ids_param(sorted(line_ids)))
                .filter(failing)
                .values_list("pk", flat=True)
            }
        return result
