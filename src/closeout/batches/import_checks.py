"""Checking an import file's rows against the database (导入结案指令, validate): with what
`import_facts` reads set-based (the documents by (type, number), their lines and rule
failures), each permission asked once per unit and type, each row is judged as a close, a
close request or a reopen. Changes nothing; the execution is in `imports`."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.approvals.models import AccountingPeriod, ApprovalRoute, RequestAction
from closeout.approvals.selectors import active_routes, route_choose
from closeout.batches.import_facts import DimensionFacts, DocRow, Facts, load_documents, rule_facts
from closeout.batches.import_files import Table
from closeout.batches.import_parse import Reasons, RowCheck, parse_row
from closeout.closing.guards import (
    close_date_refusals,
    close_path_of,
    in_closed_period,
    lines_to_close,
    no_open_line,
)
from closeout.closing.models import Severity
from closeout.closing.rules import LINE_SCOPE, Rule
from closeout.closing.services import close_guard
from closeout.core.errors import InvalidInput, RuleFailed
from closeout.documents.models import CloseState

# --- duplicates ----------------------------------------------------------------------------


def _check_duplicates(rows: list[RowCheck]) -> None:
    """A document may appear in several rows only to close different lines (or dimensions); a
    later row that repeats or overlaps an earlier one is refused, naming the earlier row."""
    earlier: dict[tuple[str, str, str, str], list[RowCheck]] = defaultdict(list)
    for row in rows:
        if not (row.doc_type and row.number):
            continue
        # Each close dimension of a document is a close of its own.
        key = (row.doc_type, row.number, row.company, row.dimension)
        mine = set(row.line_nos) if row.line_nos else None
        for other in earlier[key]:
            theirs = set(other.line_nos) if other.line_nos else None
            if mine == theirs:
                row.error(
                    "number",
                    f"duplicate row: the same document and lines as row {other.row}",
                )
                break
            if mine is None or theirs is None or mine & theirs:
                shared = (
                    "the whole document"
                    if mine is None or theirs is None
                    else "line " + ", ".join(map(str, sorted(mine & theirs)))
                )
                row.error("lines", f"row {other.row} already takes {shared} of this document")
                break
        else:
            earlier[key].append(row)


def _row_document(row: RowCheck, found: list[DocRow], perms: "_Permissions") -> None:
    """The row's document among those of its number the uploader may view (a document they
    may not view is reported as unknown, word for word); a number held by several of their
    companies needs the company column."""
    found = [
        d
        for d in found
        if perms.allows(Perm.DOCUMENT_VIEW, d) and (not row.company or d.company == row.company)
    ]
    if not found:
        row.error("number", f"unknown document: no {row.doc_type} numbered {row.number}")
    elif len(found) > 1:
        codes = ", ".join(sorted(d.company for d in found))
        row.error(
            "company",
            f"{row.doc_type} {row.number} exists in several companies ({codes}): "
            "fill in the company column",
        )
    else:
        row.document = found[0]


class _Permissions:
    """The actor's permission per (permission, unit, type), asked once each."""

    def __init__(self, user: AbstractBaseUser) -> None:
        self.user = user
        self.known: dict[tuple[str, int, str], bool] = {}

    def allows(self, perm: str, document: DocRow) -> bool:
        key = (perm, document.org_unit_id, document.doc_type)
        if key not in self.known:
            self.known[key] = user_has_perm(
                self.user, perm, org_unit=document.org_unit, doc_type=document.doc_type
            )
        return self.known[key]

    def refusal(self, perm: Perm, document: DocRow) -> str:
        return (
            f"no permission: {self.user.get_username()} lacks '{perm.value}' "
            f"({perm.label}) for {document.label} in {document.org_unit.code}"
        )


STATE_WORDS: dict[str, str] = {
    CloseState.OPEN: "open",
    CloseState.CLOSED: "already closed",
    CloseState.CLOSE_PENDING: "waiting for close approval",
    CloseState.REOPEN_PENDING: "waiting for reopen approval",
    CloseState.ON_HOLD: "on hold",
    CloseState.ARCHIVED: "archived (final)",
}


def _described(failing: dict[str, tuple[Rule, set[int]]]) -> dict[str, str]:
    """Failing rules as the close guard names them: code, label and the failing lines."""
    described = {}
    for code, (rule, lines) in failing.items():
        where = f" (lines {', '.join(map(str, sorted(lines)))})" if lines else ""
        described[code] = f"{code}: {rule.label_en}{where}"
    return described


def _judge_close(
    row: RowCheck,
    document: DocRow,
    facts: Facts,
    perms: _Permissions,
    routes: list[ApprovalRoute],
    closed_periods: list[tuple[date, date, str | None]],
) -> None:
    """A close or request row on an open document: lines, date, permission, rules, route; the
    guards are those of the close service (`closing.guards`, `close_guard`), fed the facts
    loaded set-based."""
    perm = Perm.CLOSE_REQUEST if row.action == "request" else Perm.CLOSE_DIRECT
    if not perms.allows(perm, document):
        row.error("action", perms.refusal(perm, document))
    lines = facts.lines.get(document.pk, {})
    chosen = _chosen_lines(row, document, lines)
    if chosen is None:
        return
    day = row.close_date or timezone.localdate()
    for refusal in close_date_refusals(
        day,
        today=timezone.localdate(),
        document_date=document.document_date,
        period_closed=in_closed_period(day, document.company, closed_periods),
    ):
        row.error("close_date", refusal.message)
    failing = failing_rules(document.pk, facts, row.line_nos, chosen)
    blocking, exceptions = failing[Severity.BLOCKING], failing[Severity.EXCEPTION]
    try:
        # The one guard of a manual close, given the failing rules it would see.
        close_guard(
            document.label,
            blocking=_described(blocking),
            exceptions=_described(exceptions),
            remark=row.remark,
        )
    except RuleFailed as refusal:
        row.error("number", f"blocking rule failed: {refusal.message}")
    except InvalidInput as refusal:
        row.error("remark", f"exception rule failed: {refusal.message}")
    if not row.errors:
        _judge_path(row, document, facts, perms, routes, chosen, bool(exceptions))


def _chosen_lines(
    row: RowCheck, document: DocRow, lines: dict[int, tuple[str, Decimal]]
) -> list[int] | None:
    """The lines the row closes (its line numbers, or every open line); None, with the row's
    error, when they cannot close."""
    if row.line_nos is None:
        chosen = lines_to_close({n: state for n, (state, _v) in lines.items()})
        if not chosen:
            row.error("number", no_open_line(document.label).message)
            return None
        return chosen
    unknown = [n for n in row.line_nos if n not in lines]
    if unknown:
        row.error(
            "lines",
            f"unknown line number: {document.label} has no line " + ", ".join(map(str, unknown)),
        )
        return None
    closed = [n for n in row.line_nos if lines[n][0] != CloseState.OPEN]
    if closed:
        states = ", ".join(
            f"line {n} is {STATE_WORDS.get(lines[n][0], lines[n][0])}" for n in closed
        )
        row.error("lines", f"{document.label}: {states}")
        return None
    return list(row.line_nos)


Failing = dict[str, tuple[Rule, set[int]]]


def failing_rules(
    document_id: int, facts: Facts, line_nos: list[int] | None, chosen: list[int]
) -> dict[Severity, Failing]:
    """The rules failing on the chosen lines by severity, with the document rules when the
    close takes every line in the rules' scope (as the checklist judges a close)."""
    lines = facts.lines.get(document_id, {})
    in_scope = {n for n, (state, _v) in lines.items() if state in LINE_SCOPE}
    judged = in_scope if line_nos is None else set(chosen)
    failing: Failing = {}
    severities: dict[str, Severity] = {}
    for line_no in sorted(judged):
        for rule, severity in facts.line_failing.get((document_id, line_no), []):
            failing.setdefault(rule.code, (rule, set()))[1].add(line_no)
            severities[rule.code] = severity
    if line_nos is None or judged >= in_scope:
        for rule, severity in facts.doc_failing.get(document_id, []):
            failing.setdefault(rule.code, (rule, set()))
            severities[rule.code] = severity
    by_severity: dict[Severity, Failing] = defaultdict(dict)
    for code, value in failing.items():
        by_severity[severities[code]][code] = value
    return by_severity


def _judge_path(
    row: RowCheck,
    document: DocRow,
    facts: Facts,
    perms: _Permissions,
    routes: list[ApprovalRoute],
    chosen: list[int],
    exception: bool,
) -> None:
    """Now or through a close request (the close service's decision, `close_path_of`)."""
    lines = facts.lines.get(document.pk, {})
    open_value = sum((lines[n][1] for n in chosen), Decimal(0))
    route = (
        route_choose(
            document=document.model(),
            action=RequestAction.CLOSE,
            exception=exception,
            open_value=open_value,
            routes=routes,
        )
        if routes
        else None
    )
    policy = facts.policy.get(document.pk)
    path = close_path_of(
        policy_demands_approval=bool(policy and policy.direct_close_needs_approval),
        route=route.name if route is not None else None,
    )
    what = "the whole document" if row.line_nos is None else f"line {', '.join(map(str, chosen))}"
    if row.action == "request":
        if route is None and path.needs_approval:
            row.error(
                "action",
                f"{document.label}: the policy requires approval but no approval route "
                "matches; ask an administrator to configure one",
            )
        elif route is None:
            row.outcome = "would_close"
            row.note = f"close request without approval route: closes {what} at once"
        else:
            row.outcome = "needs_approval"
            row.note = f"close request for {what}, approval route '{route.name}'"
        return
    if path.needs_approval:
        if not perms.allows(Perm.CLOSE_REQUEST, document):
            row.error(
                "action",
                perms.refusal(Perm.CLOSE_REQUEST, document) + " (this close "
                "needs approval, so it is submitted as a close request)",
            )
            return
        row.outcome = "needs_approval"
        row.note = (
            f"needs approval (route '{path.route or 'policy'}'): a close request for {what} "
            "is submitted"
        )
        return
    row.outcome = "would_close"
    row.note = f"closes {what}" + (" (exception, with remark)" if exception else "")


def _judge_dimension(
    row: RowCheck, document: DocRow, facts: Facts, perms: _Permissions, dims: DimensionFacts
) -> None:
    """A close of one dimension of the named lines (or of every line open in it), judged as
    `closing.dimension_services.line_dimension_close` judges it."""
    if not perms.allows(Perm.CLOSE_DIRECT, document):
        row.error("action", perms.refusal(Perm.CLOSE_DIRECT, document))
        return
    code = row.dimension
    lines = facts.lines.get(document.pk, {})
    chosen = _chosen_lines(row, document, lines)
    if chosen is None:
        return
    ids = {n: facts.line_ids.get((document.pk, n), 0) for n in chosen}
    done = [n for n in chosen if code in dims.closed.get(ids[n], set())]
    if row.line_nos is None:
        chosen = [n for n in chosen if n not in done]
        if not chosen:
            row.error("number", f"{document.label} has no line open for {code}")
            return
    elif done:
        row.error(
            "lines",
            f"{document.label}: line {', '.join(map(str, done))} is already closed for {code}",
        )
        return
    failing = [n for n in chosen if (code, ids[n]) in dims.failing]
    try:
        close_guard(
            document.label,
            blocking={},
            exceptions=(
                {code: f"{code} rules fail (lines {', '.join(map(str, failing))})"}
                if failing
                else {}
            ),
            remark=row.remark,
        )
    except InvalidInput as refusal:
        row.error("remark", f"exception rule failed: {refusal.message}")
        return
    what = "every open line" if row.line_nos is None else f"line {', '.join(map(str, chosen))}"
    row.outcome = "would_close_dim"
    row.note = f"closes {what} for {code}" + (" (exception, with remark)" if failing else "")


def _judge_reopen(
    row: RowCheck,
    document: DocRow,
    perms: _Permissions,
    closed_periods: list[tuple[date, date, str | None]],
    routes: list[ApprovalRoute],
) -> None:
    day = document.close_date
    period_closed = day is not None and in_closed_period(day, document.company, closed_periods)
    if perms.allows(Perm.REOPEN_APPROVE, document) and not period_closed:
        row.outcome = "would_reopen"
        row.note = "reopens the last close"
        return
    if not perms.allows(Perm.REOPEN_REQUEST, document):
        row.error(
            "action", perms.refusal(Perm.REOPEN_APPROVE, document) + " (nor 'reopen.request')"
        )
        return
    if not row.remark.strip():
        row.error("remark", "a reopen request needs a remark explaining why")
        return
    route = route_choose(
        document=document.model(),
        action=RequestAction.REOPEN,
        exception=False,
        open_value=document.released_value_company,
        routes=routes,
    )
    if route is None:
        row.error(
            "action",
            f"{document.label}: no reopen approval route is configured; a reopen always needs "
            "management approval",
        )
        return
    row.outcome = "reopen_request"
    row.note = f"a reopen request is submitted (approval route '{route.name}')" + (
        "; the close lies in a closed accounting period" if period_closed else ""
    )


def import_check(*, actor: AbstractBaseUser, table: Table, keys: list[str]) -> list[RowCheck]:
    """Validate every row; changes nothing. A few queries per 1,000 documents whatever the
    number of rows: documents by (type, number), their lines and rule failures per policy,
    and each permission once per unit and type."""
    reasons = Reasons.load()
    rows = [RowCheck(row_no, cells) for row_no, cells in table.rows]
    today = timezone.localdate()
    for row in rows:
        parse_row(row, keys, reasons, today)
    documents = load_documents(rows)
    perms = _Permissions(actor)
    for row in rows:
        if row.doc_type and row.number:
            _row_document(row, documents.get((row.doc_type, row.number), []), perms)
        if row.document is not None and row.action:
            reasons.company_check(row, row.document.company, row.document.label)
    facts = Facts()
    by_type: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        document = row.document
        if document is None or not row.action:
            continue
        if row.action in ("close", "request"):
            if document.close_state != CloseState.OPEN:
                row.error(
                    "number",
                    f"{document.label} is {STATE_WORDS.get(document.close_state, '?')}"
                    + ("; nothing to close" if document.close_state == CloseState.CLOSED else ""),
                )
            else:
                by_type[document.doc_type].add(document.pk)
        elif document.close_state != CloseState.CLOSED:
            row.error(
                "number",
                f"{document.label} is not closed (it is "
                f"{STATE_WORDS.get(document.close_state, '?')}); only a closed document can be "
                "reopened",
            )
    for doc_type, ids in by_type.items():
        rule_facts(doc_type, sorted(ids), facts)
    dimensions = DimensionFacts.load([r for r in rows if r.dimension and r.ok], facts)
    close_routes = active_routes(RequestAction.CLOSE)
    reopen_routes = active_routes(RequestAction.REOPEN)
    closed_periods: list[tuple[date, date, str | None]] = list(
        AccountingPeriod.objects.filter(closed=True).values_list(
            "start", "end", "company__unit__code"
        )
    )
    for row in rows:
        if row.errors or row.document is None:
            continue
        if row.action == "reopen":
            _judge_reopen(row, row.document, perms, closed_periods, reopen_routes)
        elif row.dimension:
            _judge_dimension(row, row.document, facts, perms, dimensions)
        else:
            _judge_close(row, row.document, facts, perms, close_routes, closed_periods)
    # Among the rows that would run: a document twice only for different lines.
    _check_duplicates([row for row in rows if row.ok])
    return rows
