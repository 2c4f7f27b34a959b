"""Reads for closing: the pre-close checklist (S5), readiness filters and open commitments."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.utils.translation import gettext_noop
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from closeout.closing.models import ClosePolicy, Severity
from closeout.closing.policies import policy_for
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, effective_rules, num, open_qty_expr
from closeout.closing.types import close_spec_for
from closeout.core.errors import InvalidInput
from closeout.core.inputs import MAX_DAYS, date_problem, place, refuse_bad_json
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.types import Commitment, all_specs, spec_for

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


def _date_or_text(value: Any) -> Any:
    """Dates come as dates (forms) or ISO text (JSON): never as numbers, which pydantic would
    take for Unix times."""
    if value == "":
        return None
    if value is not None and not isinstance(value, str | date):
        raise PydanticCustomError("date_type", "expected a date as YYYY-MM-DD")
    return value


def _date_bounded(value: date | None) -> date | None:
    problem = date_problem(value) if value is not None else ""
    if problem:
        raise PydanticCustomError("date_range", problem)
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


FilterDate = Annotated[date | None, BeforeValidator(_date_or_text), AfterValidator(_date_bounded)]
if TYPE_CHECKING:
    CloseStateName = str
else:
    CloseStateName = Literal[tuple(CloseState.values)]


class QueueFilterIn(BaseModel):
    """The typed form of a queue filter: what the queue page, the API (`filter` of a batch)
    and `closeout batch create --filter` may send. Unknown keys and values of the wrong type
    are refused with the key they name."""

    model_config = ConfigDict(extra="forbid")

    doc_type: StrictStr = Field(default="", max_length=20)
    number: StrictStr = Field(default="", max_length=60)
    partner: StrictStr = Field(default="", max_length=100)
    date_from: FilterDate = None
    date_to: FilterDate = None
    # One state or a list of them; kept as a list.
    close_states: Annotated[
        list[CloseStateName], BeforeValidator(_one_or_many), Field(max_length=10)
    ] = []
    org_unit: StrictStr = Field(default="", max_length=40)
    verdict: Literal["", "ready", "warning", "exception", "blocked"] = ""
    has_quarantined: StrictBool | None = None
    min_age_days: StrictInt | None = Field(default=None, ge=0, le=MAX_DAYS)
    # Close dimensions (关闭维度): a line closed for one and still open for the other, e.g.
    # closed for receiving, invoicing open.
    closed_for: StrictStr = Field(default="", max_length=20)
    open_for: StrictStr = Field(default="", max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _json_object(cls, data: Any) -> Any:
        return refuse_bad_json(cls.__name__, data)

    @model_validator(mode="after")
    def _period(self) -> "QueueFilterIn":
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise PydanticCustomError("date_order", "the period ends before it starts")
        return self


# The work queue's documents before any state is chosen: those still to close (待结案).
STATES_TO_CLOSE = (CloseState.OPEN, CloseState.CLOSE_PENDING, CloseState.ON_HOLD)


@dataclass(frozen=True)
class QueueFilter:
    """The work queue's filter (待结案), also saved with batch jobs."""

    doc_type: str
    number: str = ""
    partner: str = ""
    date_from: date | None = None
    date_to: date | None = None
    close_states: tuple[str, ...] = ()
    org_unit: str = ""
    verdict: str = ""
    has_quarantined: bool | None = None
    min_age_days: int | None = None
    closed_for: str = ""
    open_for: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QueueFilter":
        """A filter from its saved or sent form, checked by `QueueFilterIn`."""
        try:
            checked = QueueFilterIn.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = place(["filter", *error["loc"]])
            raise InvalidInput(
                gettext_noop("%(where)s: %(msg)s"),
                details={"field": where},
                params={"where": where, "msg": error["msg"]},
            ) from exc
        values = checked.model_dump()
        values["close_states"] = tuple(values["close_states"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        for key in ("date_from", "date_to"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        data["close_states"] = list(self.close_states)
        return data


def document_queue(f: QueueFilter) -> QuerySet[Document]:
    """Documents matching a queue filter, newest first by id (keyset-friendly)."""
    from closeout.core.models import OrgUnit
    from closeout.documents.models import (
        AWAITING_DECISION,
        BusinessEvent,
        CloseState,
        EventStatus,
    )

    spec_for(f.doc_type)
    qs = Document.objects.filter(doc_type=f.doc_type)
    if f.number:
        # Anywhere in the number, any case: on PostgreSQL a trigram index on UPPER(number)
        # serves it at any size (documents migration 0009).
        qs = qs.filter(number__icontains=f.number.strip())
    if f.partner:
        qs = qs.filter(
            Q(partner__code__iexact=f.partner.strip())
            | Q(partner__name__icontains=f.partner.strip())
        )
    if f.date_from:
        qs = qs.filter(document_date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(document_date__lte=f.date_to)
    if f.close_states:
        unknown = [s for s in f.close_states if s not in CloseState.values]
        if unknown:
            raise InvalidInput(
                gettext_noop("unknown close state '%(unknown)s'"),
                details={"field": "close_states"},
                params={"unknown": unknown[0]},
            )
        qs = qs.filter(close_state__in=f.close_states)
        if set(f.close_states) <= set(AWAITING_DECISION):
            # The same documents, said so that document_awaiting_idx serves them: no index
            # holds close_state itself (a close would then write every document index).
            qs = qs.filter(awaiting_decision=True)
    if f.org_unit:
        unit = OrgUnit.objects.filter(code=f.org_unit).first()
        if unit is None:
            raise InvalidInput(
                gettext_noop("unknown organisation unit '%(org_unit)s'"),
                details={"field": "org_unit"},
                params={"org_unit": f.org_unit},
            )
        qs = qs.filter(org_unit__path__startswith=unit.path)
    if f.verdict:
        qs = qs.filter(close_state=CloseState.OPEN).filter(verdict_condition(f.doc_type, f.verdict))
    if f.has_quarantined is not None:
        quarantined = BusinessEvent.objects.filter(
            document_id=OuterRef("pk"), status=EventStatus.QUARANTINED
        )
        qs = (
            qs.filter(Exists(quarantined)) if f.has_quarantined else qs.exclude(Exists(quarantined))
        )
    if f.min_age_days is not None:
        from datetime import timedelta

        from django.utils import timezone

        qs = qs.filter(document_date__lte=timezone.localdate() - timedelta(days=f.min_age_days))
    if f.closed_for or f.open_for:
        qs = qs.filter(_dimension_condition(f.doc_type, f.closed_for, f.open_for))
    return qs.order_by("-pk")


def _dimension_condition(doc_type: str, closed_for: str, open_for: str) -> Q:
    """Documents with an open line closed for `closed_for` and open for `open_for` (either may
    be empty)."""
    from closeout.closing.dimensions import closed_in, dimension_get
    from closeout.documents.models import CloseState

    lines = Line.objects.filter(document_id=OuterRef("pk"), close_state=CloseState.OPEN)
    if closed_for:
        lines = lines.filter(closed_in(dimension_get(doc_type, closed_for).code))
    if open_for:
        lines = lines.exclude(closed_in(dimension_get(doc_type, open_for).code))
    return Q(Exists(lines))


__all__ = [
    "Checklist",
    "DocumentVerdict",
    "ItemCommitment",
    "QueueFilter",
    "QueueFilterIn",
    "RuleCheck",
    "close_checklist_for",
    "close_checklist_with_risks",
    "document_queue",
    "documents_failing",
    "documents_ready_to_close",
    "open_commitments_by_item",
    "released_value_for",
    "verdict_condition",
    "verdicts_for",
]
