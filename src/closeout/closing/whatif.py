"""What-if before a policy change (S19): what new policy values would do to open documents.

Set-based, with the rule definitions of `closing/rules.py` and the classification of the sweep:
every rule of the type is evaluated for the stored and the proposed policy in one statement
(line rules over the lines grouped by document, as the sweep does; document rules on the
documents), the documents are counted per combination of failing rules, and each combination
is classified in Python with `DocumentVerdict` (few combinations, however many documents)."""

import copy
import operator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import reduce
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import (
    Case,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Value,
    When,
)

from closeout.closing.models import ClosePolicy, Severity
from closeout.closing.policies import policy_change_check, policy_for, policy_partitions
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, dec, effective_rules, num
from closeout.closing.selectors import DocumentVerdict
from closeout.closing.types import close_spec_for
from closeout.core.lookup import org_unit_by_code
from closeout.documents.models import CloseState, Document, Line

VERDICTS = ("ready", "not_due", "warning", "exception", "blocked")
SAMPLE_SIZE = 20
_VALUE = DecimalField(max_digits=38, decimal_places=10)
# Values are stored with 4 decimal places; SQLite sums them as floats (0.0600000000000001).
VALUE_PLACES = Decimal("0.0001")


def _stored(value: object) -> Decimal:
    """A summed value at the precision it is stored with."""
    return Decimal(str(value or 0)).quantize(VALUE_PLACES)


@dataclass(frozen=True)
class WhatIfMove:
    """One document whose sweep verdict changes, and the rules that move it."""

    document_id: int
    number: str
    before: str
    after: str
    rules: list[tuple[Rule, Severity | None, Severity | None]]


@dataclass
class WhatIf:
    doc_type: str
    org_unit: str
    examined: int = 0
    before: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    after: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    changed: int = 0
    # Open value (company currency) the next sweep would release: now, and with the change.
    release_before: Decimal = Decimal(0)
    release_after: Decimal = Decimal(0)
    sample: list[WhatIfMove] = field(default_factory=list)

    def rows(self) -> list[tuple[str, int, int, int]]:
        """(verdict, now, after the change, difference) for the page."""
        return [
            (v, self.before[v], self.after[v], self.after[v] - self.before[v]) for v in VERDICTS
        ]


@dataclass(frozen=True)
class _Side:
    """One policy's effective rules: rule index → the severity it gives, when switched on."""

    policy: ClosePolicy
    severity: dict[int, Severity]

    @classmethod
    def of(cls, rules: tuple[Rule, ...], policy: ClosePolicy) -> "_Side":
        effective = {r.code: s for r, s in effective_rules(rules, policy, for_auto=True)}
        return cls(
            policy, {i: effective[r.code] for i, r in enumerate(rules) if r.code in effective}
        )

    def verdict(self, rules: tuple[Rule, ...], flags: tuple[int, ...]) -> str:
        failing = [(rules[i], s) for i, s in self.severity.items() if flags[i]]
        return DocumentVerdict(0, failing).verdict

    def effect(self, i: int, flags: tuple[int, ...]) -> Severity | None:
        return self.severity.get(i) if flags[i] else None


def _flag(condition: Q) -> Case:
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


@dataclass(frozen=True)
class _PerDocument:
    """One row per document in scope: `did`, the failing rules of both sides as one integer
    `m` (a bit per distinct rule condition) and `v`, its open value in company currency."""

    sql: str
    params: list[Any]
    # (side, rule index) → its bit in `m`; a rule a side switches off has none (never failing)
    bits: dict[tuple[int, int], int]

    def flags(self, mask: int, side: int, count: int) -> tuple[int, ...]:
        return tuple(
            (mask >> self.bits[(side, i)]) & 1 if (side, i) in self.bits else 0
            for i in range(count)
        )


def _line_mask(line_bits: list[tuple[int, Q, Q | None]]) -> Any:
    """One integer per line, a bit per failing line condition. The conditions of rules that
    declare when a line passes them whatever the policy (`Rule.passes_when`) are skipped, for
    both policies at once, on the lines where all those hold: one test per settled line."""
    guarded = [(b, c) for b, c, clear in line_bits if clear is not None]
    others = [(b, c) for b, c, clear in line_bits if clear is None]

    def bits(pairs: list[tuple[int, Q]]) -> Any:
        return reduce(
            operator.add,
            (Case(When(c, then=Value(1 << b)), default=Value(0)) for b, c in pairs),
            Value(0),
        )

    mask = bits(others)
    if guarded:
        clears = {str(Line.objects.filter(q).query): q for _b, _c, q in line_bits if q is not None}
        settled = reduce(operator.and_, clears.values())
        mask = Case(When(settled, then=Value(0)), default=bits(guarded)) + mask
    return ExpressionWrapper(mask, output_field=IntegerField())


def _per_document(
    doc_type: str, scope: Q, rules: tuple[Rule, ...], sides: tuple[_Side, _Side], *, value: bool
) -> _PerDocument:
    """The documents in scope with their failing rules as bits and their open value. Line
    rules are evaluated per line into one integer, OR-ed over the document's lines (a rule
    fails on the document when it fails on one of its lines, as in the sweep's EXISTS), in
    the one join of the documents with their lines; a condition the change leaves as it was
    is evaluated once for both sides; without `value`, the open value is not summed."""
    doc_bits: list[tuple[int, Q]] = []
    line_bits: list[tuple[int, Q, Q | None]] = []
    bits: dict[tuple[int, int], int] = {}
    seen: dict[str, int] = {}
    for s, side in enumerate(sides):
        for i, rule in enumerate(rules):
            if i not in side.severity:
                continue
            condition = rule.failing(side.policy)
            model = Document if rule.scope is Scope.DOCUMENT else Line
            key = f"{rule.scope}:{model.objects.filter(condition).query}"
            if key not in seen:
                seen[key] = bit = len(seen)
                if model is Document:
                    doc_bits.append((bit, condition))
                else:
                    line_bits.append((bit, condition, rule.passes_when))
            bits[(s, i)] = seen[key]
    doc_mask = reduce(
        operator.add,
        (Case(When(c, then=Value(1 << b)), default=Value(0)) for b, c in doc_bits),
        Value(0),
    )
    docs = (
        Document.objects.filter(doc_type=doc_type, close_state=CloseState.OPEN)
        .filter(scope)
        .order_by()
        .annotate(dm=ExpressionWrapper(doc_mask, output_field=IntegerField()))
        .values("dm", did=F("pk"), rate=F("exchange_rate"))
    )
    sql, params = docs.query.sql_with_params()
    qn = connection.ops.quote_name
    mask, open_value, source = f"d.{qn('dm')}", "0", f"FROM ({sql}) d"
    if line_bits or value:
        join, join_params = _lines_join(doc_type, line_bits, value=value)
        source, params = f"{source}{join}", (*params, *join_params)
    if line_bits:
        mask += f" + COALESCE(l.{qn('lm')}, 0)"
    if value:
        open_value = f"COALESCE(l.{qn('lv')}, 0) * d.{qn('rate')}"
    return _PerDocument(
        f"SELECT d.{qn('did')} AS did, {mask} AS m, {open_value} AS v {source}",
        list(params),
        bits,
    )


def _lines_join(
    doc_type: str, line_bits: list[tuple[int, Q, Q | None]], *, value: bool
) -> tuple[str, tuple[Any, ...]]:
    """The join of `d` with its lines: the lines of the documents of the type waiting to close,
    one row per line (its mask, its open value), then one row per document `l` (OR of the
    masks as `lm`, sum of the open value as `lv`)."""
    qn = connection.ops.quote_name
    columns: dict[str, Any] = {}
    if line_bits:
        columns["lm"] = _line_mask(line_bits)
    if value:
        released = num(close_spec_for(doc_type).released_value())
        columns["lv"] = Case(When(close_state=CloseState.OPEN, then=released), default=dec(0))
    lines = (
        Line.objects.filter(
            document_id__in=Document.objects.filter(
                doc_type=doc_type, close_state=CloseState.OPEN
            ).values("pk"),
            close_state__in=LINE_SCOPE,
        )
        .order_by()
        .annotate(**columns)
        .values(*columns, lid=F("document_id"))
    )
    sql, params = lines.query.sql_with_params()
    lm, lv, lid = qn("lm"), qn("lv"), qn("lid")
    aggregates = [f"y.{lid} AS {lid}"]
    if line_bits and connection.vendor == "postgresql":
        aggregates.append(f"BIT_OR(y.{lm}) AS {lm}")
    elif line_bits:  # SQLite has no BIT_OR: a MAX per bit
        per_bit = " + ".join(f"MAX((y.{lm} >> {b}) & 1) * {1 << b}" for b, _c, _q in line_bits)
        aggregates.append(f"{per_bit} AS {lm}")
    if value:
        aggregates.append(f"SUM(y.{lv}) AS {lv}")
    # Django's own SQL (values as parameters), quoted names and integers.
    per_document = f"SELECT {', '.join(aggregates)} FROM ({sql}) y GROUP BY y.{lid}"  # noqa: S608
    return f" LEFT JOIN ({per_document}) l ON l.{lid} = d.{qn('did')}", params


def _target(
    doc_type: str, unit_code: str, changes: dict[str, Any]
) -> tuple[ClosePolicy, ClosePolicy, Q]:
    """The stored policy the documents follow now, the proposed one, and their documents."""
    unit = org_unit_by_code(unit_code) if unit_code else None
    stored = list(ClosePolicy.objects.filter(doc_type=doc_type).select_related("org_unit"))
    own = next((p for p in stored if p.org_unit_id == (unit.pk if unit else None)), None)
    before = own if own is not None else policy_for(doc_type, unit)
    # As policy_update does: a unit without its own policy gets one with the model defaults.
    after = copy.copy(own) if own is not None else ClosePolicy(doc_type=doc_type, org_unit=unit)
    after.rule_settings = copy.deepcopy(after.rule_settings)
    for name, value in changes.items():
        setattr(after, name, value)
    proposed = [p for p in stored if p is not own] + [after]
    scope = next(q for p, q in policy_partitions(doc_type, proposed) if p is after)
    return before, after, scope


def policy_whatif(
    *,
    actor: AbstractBaseUser,
    doc_type: str,
    org_unit: str = "",
    changes: dict[str, Any],
    sample_size: int = SAMPLE_SIZE,
) -> WhatIf:
    """What `policy_update(doc_type, org_unit, changes)` would do to the open documents it
    governs, before it is saved: their sweep verdicts now and after, a sample of the documents
    that move with the rules that move them, and the open value the next sweep would release.

    One statement counts the documents per combination of failing rules (one integer) and
    sums their open value; on PostgreSQL it also returns the first document ids of each
    combination, so the sample needs no second pass over the lines."""
    policy_change_check(actor=actor, doc_type=doc_type, org_unit=org_unit, changes=changes)
    before, after, scope = _target(doc_type, org_unit, changes)
    rules = close_spec_for(doc_type).rules
    sides = (_Side.of(rules, before), _Side.of(rules, after))
    released = before.auto_close_enabled or after.auto_close_enabled
    per_doc = _per_document(doc_type, scope, rules, sides, value=released)
    ids_inline = connection.vendor == "postgresql" and sample_size > 0
    first_ids = f", (ARRAY_AGG(did ORDER BY did))[1:{int(sample_size)}]" if ids_inline else ""
    with connection.cursor() as cursor:
        cursor.execute(
            # Built from Django's own SQL (values as parameters) and integers.
            f"SELECT m, COUNT(*), SUM(v){first_ids} FROM ({per_doc.sql}) x GROUP BY m",  # noqa: S608
            per_doc.params,
        )
        groups = cursor.fetchall()
    result = WhatIf(doc_type=doc_type, org_unit=org_unit)
    moving: dict[int, tuple[str, str]] = {}
    candidates: list[tuple[int, int]] = []
    for mask, count, value, *ids in groups:
        old, new = per_doc.flags(mask, 0, len(rules)), per_doc.flags(mask, 1, len(rules))
        was, will = sides[0].verdict(rules, old), sides[1].verdict(rules, new)
        result.examined += count
        result.before[was] += count
        result.after[will] += count
        if was == "ready" and before.auto_close_enabled:
            result.release_before += _stored(value)
        if will == "ready" and after.auto_close_enabled:
            result.release_after += _stored(value)
        if was != will:
            result.changed += count
            moving[int(mask)] = (was, will)
            candidates += [(pk, int(mask)) for pk in ids[0]] if ids else []
    if moving and sample_size:
        result.sample = _sample(per_doc, moving, candidates, rules, sides, sample_size)
    return result


def _sample(
    per_doc: _PerDocument,
    moving: dict[int, tuple[str, str]],
    candidates: list[tuple[int, int]],
    rules: tuple[Rule, ...],
    sides: tuple[_Side, _Side],
    size: int,
) -> list[WhatIfMove]:
    """The first `size` moving documents by id, with the rules whose effect the change moves.
    On PostgreSQL they come with the counts (`candidates`: the first ids of each moving
    combination); elsewhere from a second statement."""
    if candidates:
        rows = sorted(candidates)[:size]
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT did, m FROM ({per_doc.sql}) x WHERE m IN "  # noqa: S608 (integers)
                f"({', '.join(str(int(m)) for m in moving)}) ORDER BY did LIMIT {int(size)}",
                per_doc.params,
            )
            rows = cursor.fetchall()
    numbers = dict(Document.objects.filter(pk__in=[r[0] for r in rows]).values_list("pk", "number"))
    sample = []
    half = len(rules)
    for pk, mask in rows:
        old, new = per_doc.flags(mask, 0, half), per_doc.flags(mask, 1, half)
        moved = [
            (rules[i], sides[0].effect(i, old), sides[1].effect(i, new))
            for i in range(half)
            if sides[0].effect(i, old) != sides[1].effect(i, new)
        ]
        was, will = moving[int(mask)]
        sample.append(WhatIfMove(pk, numbers[pk], was, will, moved))
    return sample
