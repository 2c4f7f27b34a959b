"""What-if before a policy change (S19): what new policy values would do to open documents.

Set-based, with the rule definitions of `closing/rules.py` and the classification of the sweep:
every rule of the type is evaluated for the stored and the proposed policy in one statement
(line rules over the lines grouped by document, as the sweep does; document rules on the
documents), the documents are counted per combination of failing rules, and each combination
is classified in Python with `DocumentVerdict` (few combinations, however many documents)."""

import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Case, DecimalField, F, IntegerField, Max, Q, Sum, Value, When

from closeout.closing.models import ClosePolicy, Severity
from closeout.closing.policies import policy_change_check, policy_for, policy_partitions
from closeout.closing.rules import LINE_SCOPE, Rule, Scope, dec, effective_rules, num
from closeout.closing.selectors import DocumentVerdict
from closeout.closing.types import close_spec_for
from closeout.documents.models import CloseState, Document, Line

VERDICTS = ("ready", "not_due", "warning", "exception", "blocked")
SAMPLE_SIZE = 20
_VALUE = DecimalField(max_digits=38, decimal_places=10)


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


def _sides_query(
    doc_type: str, scope: Q, rules: tuple[Rule, ...], sides: tuple[_Side, _Side]
) -> tuple[str, list[Any], list[str]]:
    """The documents in scope with a 0/1 column per rule and side, and their open value. A
    condition the change leaves as it was is evaluated once for both sides."""
    doc_cols: dict[str, Any] = {}
    line_cols: dict[str, Any] = {}
    names: dict[tuple[int, int], str] = {}
    seen: dict[str, str] = {}
    for s, side in enumerate(sides):
        for i, rule in enumerate(rules):
            if i not in side.severity:
                continue  # switched off: never failing
            condition = rule.failing(side.policy)
            model = Document if rule.scope is Scope.DOCUMENT else Line
            key = f"{rule.scope}:{model.objects.filter(condition).query}"
            if key not in seen:
                seen[key] = f"f{i}_{s}"
                target = doc_cols if rule.scope is Scope.DOCUMENT else line_cols
                target[seen[key]] = _flag(condition) if model is Document else Max(_flag(condition))
            names[(s, i)] = seen[key]
    close = close_spec_for(doc_type)
    # Per document in its currency; times its rate outside (the lines need no join then).
    open_value = num(close.released_value())
    line_cols["v"] = Sum(Case(When(close_state=CloseState.OPEN, then=open_value), default=dec(0)))
    docs = (
        Document.objects.filter(doc_type=doc_type, close_state=CloseState.OPEN)
        .filter(scope)
        .order_by()
        .annotate(**doc_cols)
        .values(*doc_cols, did=F("pk"), rate=F("exchange_rate"))
    )
    lines = (
        Line.objects.filter(
            document_id__in=Document.objects.filter(
                doc_type=doc_type, close_state=CloseState.OPEN
            ).values("pk"),
            close_state__in=LINE_SCOPE,
        )
        .order_by()
        .values(lid=F("document_id"))
        .annotate(**line_cols)
    )
    docs_sql, docs_params = docs.query.sql_with_params()
    lines_sql, lines_params = lines.query.sql_with_params()
    qn = connection.ops.quote_name
    columns = []
    for s in range(2):
        for i in range(len(rules)):
            name = names.get((s, i), "")
            if name in doc_cols:
                columns.append(f"d.{qn(name)}")
            elif name in line_cols:
                columns.append(f"COALESCE(l.{qn(name)}, 0)")
            else:
                columns.append("0")
    source = f"FROM ({docs_sql}) d LEFT JOIN ({lines_sql}) l ON l.{qn('lid')} = d.{qn('did')}"
    return source, [*docs_params, *lines_params], columns


def _target(
    doc_type: str, unit_code: str, changes: dict[str, Any]
) -> tuple[ClosePolicy, ClosePolicy, Q]:
    """The stored policy the documents follow now, the proposed one, and their documents."""
    from closeout.core.models import OrgUnit

    unit = OrgUnit.objects.filter(code=unit_code).first() if unit_code else None
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
    that move with the rules that move them, and the open value the next sweep would release."""
    policy_change_check(actor=actor, doc_type=doc_type, org_unit=org_unit, changes=changes)
    before, after, scope = _target(doc_type, org_unit, changes)
    rules = close_spec_for(doc_type).rules
    sides = (_Side.of(rules, before), _Side.of(rules, after))
    source, params, columns = _sides_query(doc_type, scope, rules, sides)
    result = WhatIf(doc_type=doc_type, org_unit=org_unit)
    half = len(rules)
    moving: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)}, COUNT(*), SUM(COALESCE(l.v, 0) * d.rate) {source} "
            f"GROUP BY {', '.join(dict.fromkeys(c for c in columns if c != '0')) or '1'}",
            params,
        )
        for *flags, count, value in cursor.fetchall():
            old = tuple(int(f) for f in flags[:half])
            new = tuple(int(f) for f in flags[half:])
            was, will = sides[0].verdict(rules, old), sides[1].verdict(rules, new)
            result.examined += count
            result.before[was] += count
            result.after[will] += count
            released = Decimal(value or 0)
            if was == "ready" and before.auto_close_enabled:
                result.release_before += released
            if will == "ready" and after.auto_close_enabled:
                result.release_after += released
            if was != will:
                result.changed += count
                moving.append(
                    "("
                    + " AND ".join(f"{c} = {v}" for c, v in zip(columns, old + new, strict=True))
                    + ")"
                )
    if moving and sample_size:
        result.sample = _sample(source, params, columns, moving, rules, sides, sample_size)
    return result


def _sample(
    source: str,
    params: list[Any],
    columns: list[str],
    moving: list[str],
    rules: tuple[Rule, ...],
    sides: tuple[_Side, _Side],
    size: int,
) -> list[WhatIfMove]:
    half = len(rules)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.{connection.ops.quote_name('did')}, {', '.join(columns)} {source} "
            f"WHERE {' OR '.join(moving)} ORDER BY 1 LIMIT {int(size)}",
            params,
        )
        rows = cursor.fetchall()
    numbers = dict(Document.objects.filter(pk__in=[r[0] for r in rows]).values_list("pk", "number"))
    sample = []
    for pk, *flags in rows:
        old = tuple(int(f) for f in flags[:half])
        new = tuple(int(f) for f in flags[half:])
        moved = [
            (rules[i], sides[0].effect(i, old), sides[1].effect(i, new))
            for i in range(half)
            if sides[0].effect(i, old) != sides[1].effect(i, new)
        ]
        sample.append(
            WhatIfMove(
                pk, numbers[pk], sides[0].verdict(rules, old), sides[1].verdict(rules, new), moved
            )
        )
    return sample
