"""The pre-close checklist (S5) and the risk warnings (S24) of many manual closes at once (the
close requests of an import or a batch): for each close what `close_checklist_for` and
`close_risks_for` give it, with the reads done together, in a number of queries that does not
grow with the number of documents:

- checklist: the policies of a type once; per (type, policy) one query for the lines' rule
  flags and measures and one for the documents';
- open lines and what they release: one query per type (`open_lines_of_many`);
- risks: per type one query for the partners' histories (a window function per partner) and
  one for the items'; the partner and item codes once; one query for the events of the
  documents closed whole (a close of chosen lines reads its own); one for the planned-quantity
  changes; the actor's close rate once.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from closeout.closing.close_preview import OpenLine, chosen, open_lines_of_many
from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_for
from closeout.closing.risk import flagged_first
from closeout.closing.risk_activity import (
    UPDATES_MAX,
    change_risks_from,
    document_updates,
    rate_risk,
)
from closeout.closing.risk_base import RECENT_EVENT_DAYS, CloseLine, RiskWarning, close_lines_of
from closeout.closing.risk_history import History, history_risks_from, item_histories
from closeout.closing.risk_history import partner_histories as partner_histories_of
from closeout.closing.risk_reasons import (
    event_counts,
    event_counts_of_documents,
    reason_checks,
    reason_risks_from,
)
from closeout.closing.rules import LINE_SCOPE, effective_rules
from closeout.closing.selectors import (
    Checklist,
    annotated_rows,
    rule_checks,
    rules_by_scope,
)
from closeout.closing.types import close_spec_for
from closeout.core.sql import ids_param
from closeout.documents.models import CloseState, Document, Line


@dataclass(frozen=True)
class CloseCase:
    """One manual close being considered: the whole document (`line_nos` None) or some of its
    lines, with the reason chosen (when known)."""

    document: Document
    line_nos: list[int] | None = None
    reason_code: str = ""


def close_checklists_for(cases: Sequence[CloseCase]) -> dict[int, Checklist]:
    """Per document, what `close_checklist_for(document, line_nos=…)` returns (a manual close's
    checklist); each document once. The documents' units should be loaded (select_related)."""
    policies: dict[str, list[ClosePolicy]] = {}
    groups: dict[tuple[str, int], tuple[ClosePolicy, list[CloseCase]]] = {}
    for case in cases:
        document = case.document
        if document.doc_type not in policies:
            policies[document.doc_type] = list(
                ClosePolicy.objects.filter(doc_type=document.doc_type).select_related("org_unit")
            )
        policy = policy_for(
            document.doc_type, document.org_unit, policies=policies[document.doc_type]
        )
        groups.setdefault((document.doc_type, policy.pk), (policy, []))[1].append(case)
    result: dict[int, Checklist] = {}
    for (doc_type, _pk), (policy, members) in groups.items():
        rules = effective_rules(close_spec_for(doc_type).rules, policy, for_auto=False)
        line_rules, doc_rules = rules_by_scope(rules)
        ids = ids_param([case.document.pk for case in members])
        lines = Line.objects.filter(document_id__in=ids, close_state__in=LINE_SCOPE)
        by_document: dict[int, list[dict[str, object]]] = defaultdict(list)
        for row in annotated_rows(
            lines.order_by("document_id", "line_no"), line_rules, policy, "document_id", "line_no"
        ):
            by_document[int(str(row.pop("document_id")))].append(row)
        doc_rows: dict[int, dict[str, object]] = {}
        if doc_rules:
            documents = Document.objects.filter(pk__in=ids)
            doc_rows = {
                int(str(row["pk"])): row
                for row in annotated_rows(documents, doc_rules, policy, "pk")
            }
        for case in members:
            rows = by_document.get(case.document.pk, [])
            whole = case.line_nos is None or set(case.line_nos) >= {r["line_no"] for r in rows}
            if case.line_nos is not None:
                rows = [r for r in rows if r["line_no"] in set(case.line_nos)]
            doc_row = doc_rows.get(case.document.pk, {}) if whole else None
            checks = rule_checks(rules, policy, rows, doc_row)
            result[case.document.pk] = Checklist(
                case.document, policy, checks, False, case.line_nos
            )
    return result


def close_risks_for_many(
    cases: Sequence[CloseCase],
    *,
    actor: AbstractBaseUser | None,
    now: datetime | None = None,
    open_lines: dict[int, list[OpenLine]] | None = None,
) -> dict[int, list[RiskWarning]]:
    """Per document, what `close_risks_for(document, actor=…, reason_code=…, line_nos=…)`
    returns; each document once. `open_lines` (from `open_lines_of_many`) saves its read."""
    moment = now or timezone.now()
    result: dict[int, list[RiskWarning]] = {case.document.pk: [] for case in cases}
    live = [case for case in cases if case.document.close_state == CloseState.OPEN]
    if open_lines is None:
        open_lines = open_lines_of_many([case.document for case in live])
    lines: dict[int, list[CloseLine]] = {}
    for case in live:
        rows = chosen(open_lines.get(case.document.pk, []), case.line_nos)
        lines[case.document.pk] = close_lines_of(
            case.document,
            [(r.line_no, r.item_id, r.planned_qty, r.rq, r.rv) for r in rows],
        )
    live = [case for case in live if lines[case.document.pk]]
    if not live:
        return result
    partners, items, codes = _histories(live, lines, moment)
    counts = _reason_counts(live, moment)
    updates = _updates([case.document.pk for case in live], moment)
    rate = rate_risk(actor, moment) if actor is not None and actor.pk is not None else None
    for case in live:
        document, own = case.document, lines[case.document.pk]
        risks = history_risks_from(
            document,
            own,
            partners.get((document.doc_type, document.partner_id), ("", [])),
            items.get(document.doc_type, {}),
            codes,
        )
        if case.reason_code:
            checks, _kinds = reason_checks(document.doc_type, case.reason_code)
            if checks:
                found = counts.get(document.pk, {})
                risks += reason_risks_from(document, case.reason_code, checks, found, own, moment)
        risks += change_risks_from(updates.get(document.pk, []), own, moment)
        if rate is not None:
            risks.append(rate)
        result[document.pk] = flagged_first(risks)
    return result


def _histories(
    cases: list[CloseCase], lines: dict[int, list[CloseLine]], now: datetime
) -> tuple[
    dict[tuple[str, int | None], tuple[str, History]], dict[str, dict[int, History]], dict[int, str]
]:
    """The partners' histories (with their codes) and the items' per type, and the items'
    codes: one query per type for each history, one for each kind of code."""
    from closeout.core.models import Item, Partner

    partner_ids: dict[str, set[int]] = defaultdict(set)
    item_ids: dict[str, set[int]] = defaultdict(set)
    for case in cases:
        document = case.document
        if document.partner_id is not None:
            partner_ids[document.doc_type].add(document.partner_id)
        for line in lines[document.pk]:
            if line.item_id is not None:
                item_ids[document.doc_type].add(line.item_id)
    every_partner = sorted({pk for ids in partner_ids.values() for pk in ids})
    partner_codes = dict(Partner.objects.filter(pk__in=every_partner).values_list("pk", "code"))
    partners: dict[tuple[str, int | None], tuple[str, History]] = {}
    for doc_type, ids in partner_ids.items():
        found = partner_histories_of(doc_type, sorted(ids), now)
        for pk in ids:
            partners[(doc_type, pk)] = (partner_codes.get(pk, str(pk)), found.get(pk, []))
    items = {
        doc_type: item_histories(doc_type, sorted(ids), now) for doc_type, ids in item_ids.items()
    }
    every_item = sorted({pk for ids in item_ids.values() for pk in ids})
    codes = dict(Item.objects.filter(pk__in=every_item).values_list("pk", "code"))
    return partners, items, codes


def _reason_counts(cases: list[CloseCase], now: datetime) -> dict[int, dict[str, dict[str, Any]]]:
    """The event counts the reasons' checks compare, per document: one grouped query per set of
    event kinds for the documents closed whole, one per close of chosen lines."""
    since = now - timedelta(days=RECENT_EVENT_DAYS)
    whole: dict[frozenset[str], list[int]] = defaultdict(list)
    result: dict[int, dict[str, dict[str, Any]]] = {}
    for case in cases:
        if not case.reason_code:
            continue
        _checks, kinds = reason_checks(case.document.doc_type, case.reason_code)
        if not kinds:
            continue
        if case.line_nos is None:
            whole[frozenset(kinds)].append(case.document.pk)
        else:
            result[case.document.pk] = event_counts(
                case.document, case.line_nos, set(kinds), since, now
            )
    for kinds_of, ids in whole.items():
        result.update(event_counts_of_documents(ids, set(kinds_of), since, now))
    return result


def _updates(document_ids: list[int], now: datetime) -> dict[int, list[tuple[datetime, Any]]]:
    """Per document, its first UPDATES_MAX updates of the planned-quantity window, in order (a
    window function numbering each document's events)."""
    rows = (
        document_updates(document_ids, now)
        .annotate(rn=Window(RowNumber(), partition_by=[F("object_id")], order_by=F("seq").asc()))
        .filter(rn__lte=UPDATES_MAX)
        .order_by("object_id", "seq")
        .values_list("object_id", "at", "data")
    )
    result: dict[int, list[tuple[datetime, Any]]] = defaultdict(list)
    for object_id, at, data in rows:
        result[int(object_id)].append((at, data))
    return result
