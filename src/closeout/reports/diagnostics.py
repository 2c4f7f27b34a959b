"""Consistency checks (数据校验, S21): each check is one set-based query over documents or lines
that lists the offending rows; a run counts them, records who ran it and warns report viewers.

The checks reuse the closing rule definitions (closing/rules.py, documents/types/) and the
close policies' tolerances wherever a rule already says what "wrong" means, so a check and the
close never disagree about a line.
"""

import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Abs, Cast, Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.services import audit_record
from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_partitions
from closeout.closing.rules import dec, less_than, more_than, num
from closeout.closing.selectors import verdict_condition
from closeout.closing.types import close_spec_for
from closeout.core.doctypes import doc_type_codes
from closeout.core.errors import InvalidInput
from closeout.core.inputs import MAX_DAYS
from closeout.core.notice_kinds import NoticeKind
from closeout.documents.models import (
    BusinessEvent,
    CloseState,
    DocType,
    Document,
    EventStatus,
    Line,
)
from closeout.reports.models import DiagnosticRun, DiagnosticTrigger

DEFAULT_REOPEN_STALE_DAYS = 30
CLOSED_STATES = (CloseState.CLOSED, CloseState.ARCHIVED)
NOT_CLOSED_STATES = (CloseState.OPEN, CloseState.ON_HOLD, CloseState.CLOSE_PENDING)


def reopen_stale_days() -> int:
    return int(getattr(settings, "CLOSEOUT_REOPEN_STALE_DAYS", DEFAULT_REOPEN_STALE_DAYS))


@dataclass(frozen=True)
class Options:
    """What a check may depend on besides the data: the time and the reopen age limit."""

    now: datetime
    stale_days: int

    @classmethod
    def default(cls, stale_days: int | None = None) -> "Options":
        days = reopen_stale_days() if stale_days is None else stale_days
        if not 0 <= days <= MAX_DAYS:
            raise InvalidInput(
                gettext_noop(
                    "reopen age limit must be 0 or more days (at most %(max)s), not %(days)s"
                ),
                params={"max": MAX_DAYS, "days": days},
                details={"field": "stale_days"},
            )
        return cls(timezone.now(), days)


@dataclass(frozen=True)
class Column:
    key: str
    label: str | Promise


@dataclass(frozen=True)
class Check:
    code: str
    label: str | Promise
    what_next: str | Promise
    # "line" or "document": what one drill-down row is.
    level: str
    measures: tuple[Column, ...]
    query: Callable[[Options], QuerySet[Any]]

    @property
    def columns(self) -> tuple[Column, ...]:
        base = [
            Column("doc_type_code", _("Type")),
            Column("doc_number", _("Number")),
            Column("org", _("Organisation unit")),
            Column("partner_name", _("Partner")),
        ]
        if self.level == "line":
            base += [Column("line", _("Line")), Column("item_code", _("Item"))]
        base.append(Column("state", _("Close state")))
        return (*base, *self.measures, Column("problem", _("Problem")))


# --- building blocks -------------------------------------------------------------------------


def prefixed(q: Q, prefix: str) -> Q:
    """A Document condition as a condition on a related model (Line: prefix "document__")."""
    clone = Q()
    clone.connector, clone.negated = q.connector, q.negated
    children: list[Any] = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(prefixed(child, prefix))
        elif isinstance(child, tuple):
            children.append((prefix + child[0], child[1]))
        else:
            raise TypeError(f"cannot move the condition {child!r} onto {prefix}")
    clone.children = children
    return clone


def by_policy(
    doc_type: str, build: Callable[[ClosePolicy], Q], *, on_lines: bool
) -> list[tuple[Q, Q]]:
    """(documents a policy governs, the condition under that policy) for each policy of a type."""
    result = []
    for policy, scope in policy_partitions(doc_type):
        where = Q(document__doc_type=doc_type) if on_lines else Q(doc_type=doc_type)
        where &= prefixed(scope, "document__") if on_lines else scope
        result.append((where, build(policy)))
    return result


def labelled(qs: QuerySet[Any], problems: list[tuple[str, list[tuple[Q, Q]]]]) -> QuerySet[Any]:
    """Rows meeting any problem condition, with the first problem they meet named."""
    condition = Q(pk__in=[])
    whens = []
    for code, parts in problems:
        for where, failing in parts:
            condition |= where & failing
            whens.append(When(where & failing, then=Value(code)))
    labelled_rows: QuerySet[Any] = qs.filter(condition).annotate(
        problem=Case(*whens, default=Value(""), output_field=CharField())
    )
    return labelled_rows


def _line_rows(qs: QuerySet[Line], **measures: Any) -> QuerySet[Any]:
    return qs.order_by("document_id", "line_no").values(
        doc_id=F("document_id"),
        doc_type_code=F("document__doc_type"),
        doc_number=F("document__number"),
        org=F("document__org_unit__code"),
        partner_name=F("document__partner__name"),
        line=F("line_no"),
        item_code=F("item__code"),
        state=F("close_state"),
        problem=F("problem"),
        **measures,
    )


def _document_rows(qs: QuerySet[Document], **measures: Any) -> QuerySet[Any]:
    return qs.order_by("pk").values(
        doc_id=F("pk"),
        doc_type_code=F("doc_type"),
        doc_number=F("number"),
        org=F("org_unit__code"),
        partner_name=F("partner__name"),
        state=F("close_state"),
        problem=F("problem"),
        **measures,
    )


def _lines_total(field: str) -> Coalesce:
    """Sum of a line field over all the document's lines (closed ones included)."""
    lines = (
        Line.objects.filter(document_id=OuterRef("pk"))
        .values("document_id")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Coalesce(Subquery(lines), dec(0))


# --- the checks ------------------------------------------------------------------------------


def _order_quantities(doc_type: str, over_rule: str) -> Callable[[Options], QuerySet[Any]]:
    """Order lines: ordered vs received/shipped vs invoiced, with the policy's tolerances."""

    def query(options: Options) -> QuerySet[Any]:
        close = close_spec_for(doc_type)
        over, match = (
            close.rule(over_rule),
            close.rule("invoice_qty_match"),
        )
        negative = Q(fulfilled_qty__lt=0) | Q(invoiced_qty__lt=0)
        problems = [
            ("negative_quantity", by_policy(doc_type, lambda p: negative, on_lines=True)),
            ("over_fulfilled", by_policy(doc_type, over.failing, on_lines=True)),
            (
                "invoiced_beyond_fulfilled",
                by_policy(
                    doc_type,
                    lambda p: match.failing(p) & more_than(F("invoiced_qty"), F("fulfilled_qty")),
                    on_lines=True,
                ),
            ),
            (
                "closed_not_invoiced_as_fulfilled",
                by_policy(
                    doc_type,
                    lambda p: match.failing(p) & Q(close_state__in=CLOSED_STATES),
                    on_lines=True,
                ),
            ),
        ]
        return _line_rows(
            labelled(Line.objects.all(), problems),
            ordered=F("planned_qty"),
            fulfilled=F("fulfilled_qty"),
            invoiced=F("invoiced_qty"),
        )

    return query


AMOUNT_TYPES = (
    DocType.PURCHASE_ORDER,
    DocType.SALES_ORDER,
    DocType.RECEIVABLE,
    DocType.PAYABLE,
)
SETTLEMENT_TYPES = (DocType.RECEIVABLE, DocType.PAYABLE)


def _documents_by_totals(
    types: tuple[str, ...], sums: dict[str, Any], build: Callable[[ClosePolicy], Q]
) -> QuerySet[Document]:
    """Documents whose line totals meet `build(policy)` under their own policy: one GROUP BY
    over the lines with the condition in HAVING, so the totals are computed in one pass."""
    # No "match nothing" seed such as Q(pk__in=[]): a line column in HAVING would join the
    # GROUP BY and split the documents into their lines.
    parts = [
        where & failing for t in types for where, failing in by_policy(t, build, on_lines=True)
    ]
    if not parts:
        return Document.objects.none()
    condition = reduce(operator.or_, parts)
    grouped = (
        Line.objects.filter(document__doc_type__in=types)
        .values("document_id", "document__doc_type", "document__org_unit__path")
        .annotate(**sums)
        .filter(condition)
        .values("document_id")
    )
    return Document.objects.filter(pk__in=grouped)


def _order_vs_invoice_amount(options: Options) -> QuerySet[Any]:
    """Per document: the invoiced amount against the order amount, beyond the policy's amount
    tolerance, once the comparison is due: always for receivables/payables with an invoice and
    for over-invoiced orders; for orders when every line is fully received/shipped."""
    order, invoiced = F("order_amount"), F("invoiced_total")
    due = more_than(invoiced, dec(0)) & (
        Q(document__doc_type__in=SETTLEMENT_TYPES) | more_than(invoiced, order) | Q(short_lines=0)
    )

    def beyond(p: ClosePolicy) -> Q:
        return due & more_than(
            Abs(num(invoiced - order)) * dec(100),
            Greatest(dec(p.amount_tolerance_abs * 100), order * dec(p.amount_tolerance_pct)),
        )

    short = Case(When(fulfilled_qty__lt=F("planned_qty"), then=Value(1)), default=Value(0))
    sums = {
        "order_amount": Sum("planned_amount"),
        "invoiced_total": Sum("invoiced_amount"),
        "short_lines": Sum(short),
    }
    qs = _documents_by_totals(AMOUNT_TYPES, sums, beyond).annotate(
        order_amount=_lines_total("planned_amount"),
        invoiced_total=_lines_total("invoiced_amount"),
        problem=Value("invoice_amount_differs", output_field=CharField()),
    )
    return _document_rows(
        qs,
        order_value=F("order_amount"),
        invoiced_value=F("invoiced_total"),
        difference=num(F("invoiced_total") - F("order_amount")),
    )


def _negative_stock(options: Options) -> QuerySet[Any]:
    """Stock-count lines whose book quantity plus posted adjustments is below zero (the stock
    count's own rule no_negative_stock), or with a negative count."""
    rule = close_spec_for(DocType.STOCK_COUNT).rule("no_negative_stock")
    problems = [
        ("negative_resulting_stock", by_policy(DocType.STOCK_COUNT, rule.failing, on_lines=True)),
        (
            "negative_count",
            by_policy(
                DocType.STOCK_COUNT,
                lambda p: less_than(Coalesce("counted_qty", dec(0)), dec(0)),
                on_lines=True,
            ),
        ),
    ]
    return _line_rows(
        labelled(Line.objects.all(), problems),
        book=F("planned_qty"),
        counted=F("counted_qty"),
        adjusted=F("adjusted_qty"),
        resulting=num(F("planned_qty") + F("adjusted_qty")),
    )


def _closed_with_events(options: Options) -> QuerySet[Any]:
    """Closed documents holding quarantined business events that arrived after the close."""
    waiting = BusinessEvent.objects.filter(
        document_id=OuterRef("pk"), status=EventStatus.QUARANTINED
    )
    stats = waiting.values("document_id").annotate(n=Count("pk"), last=Max("occurred_at"))
    qs = Document.objects.filter(close_state__in=CLOSED_STATES).filter(Exists(waiting))
    qs = qs.annotate(problem=Value("quarantined_events", output_field=CharField()))
    return _document_rows(
        qs,
        quarantined=Subquery(stats.values("n")),
        latest_event=Subquery(stats.values("last")),
        closed_on=F("close_date"),
    )


def _complete_but_open(options: Options) -> QuerySet[Any]:
    """Open documents whose every closing rule passes (the very condition of the "ready to
    close" queue filter), left open."""
    condition = Q(pk__in=[])
    for doc_type in doc_type_codes():
        condition |= Q(doc_type=doc_type) & verdict_condition(doc_type, "ready")
    qs = Document.objects.filter(close_state=CloseState.OPEN).filter(condition)
    qs = qs.annotate(problem=Value("ready_but_open", output_field=CharField()))
    return _document_rows(
        qs,
        doc_date=F("document_date"),
        last_activity=F("last_activity_at"),
        amount=F("total_amount_company"),
    )


def _settled_beyond_invoice(options: Options) -> QuerySet[Any]:
    """Receivables and payables paid or collected beyond their invoiced amount (more than the
    policy's absolute amount tolerance)."""
    settled, invoiced = F("settled_total"), F("invoiced_total")
    sums = {"invoiced_total": Sum("invoiced_amount"), "settled_total": Sum("settled_amount")}
    qs = _documents_by_totals(
        SETTLEMENT_TYPES,
        sums,
        lambda p: more_than(settled, invoiced + dec(p.amount_tolerance_abs)),
    ).annotate(
        invoiced_total=_lines_total("invoiced_amount"),
        settled_total=_lines_total("settled_amount"),
        problem=Value("settled_beyond_invoice", output_field=CharField()),
    )
    return _document_rows(
        qs,
        invoiced_value=F("invoiced_total"),
        settled_value=F("settled_total"),
        excess=num(F("settled_total") - F("invoiced_total")),
    )


def _reopened_not_closed(options: Options) -> QuerySet[Any]:
    """Documents reopened (反结案) more than N days ago and not closed again since, read from
    the audit trail: the last DOCUMENT_REOPENED event with no close event after it."""
    events = AuditEvent.objects.filter(
        object_type=AuditObject.DOCUMENT, object_id=Cast(OuterRef("pk"), CharField(max_length=64))
    )
    last_reopen = events.filter(action=AuditAction.DOCUMENT_REOPENED).order_by("-seq")
    closed_after = events.filter(
        action__in=(AuditAction.DOCUMENT_CLOSED, AuditAction.LINES_CLOSED),
        seq__gt=OuterRef("reopen_seq"),
    )
    cutoff = options.now - timedelta(days=options.stale_days)
    qs = (
        Document.objects.filter(close_state__in=NOT_CLOSED_STATES)
        .annotate(
            reopen_seq=Subquery(last_reopen.values("seq")[:1]),
            last_reopen_at=Subquery(last_reopen.values("at")[:1]),
        )
        .filter(last_reopen_at__lt=cutoff)
        .exclude(Exists(closed_after))
        .annotate(problem=Value("reopened_not_closed", output_field=CharField()))
    )
    return _document_rows(qs, reopened=F("last_reopen_at"), reopen_event=F("reopen_seq"))


_QTY = (
    Column("ordered", _("Ordered")),
    Column("fulfilled", _("Received / shipped")),
    Column("invoiced", _("Invoiced qty")),
)

CHECKS: tuple[Check, ...] = (
    Check(
        "po_quantities",
        _("Purchase orders: ordered vs received vs invoiced"),
        _(
            "Over-received lines: return the excess or confirm it. Invoiced beyond received: "
            "ask the supplier for a credit note or post the missing receipt. Closed lines not "
            "invoiced as received: reopen the order and post the invoice or credit note."
        ),
        "line",
        _QTY,
        _order_quantities(DocType.PURCHASE_ORDER, "not_over_received"),
    ),
    Check(
        "so_quantities",
        _("Sales orders: ordered vs shipped vs invoiced"),
        _(
            "Over-shipped lines: check the delivery and the customer's acceptance. Invoiced "
            "beyond shipped: issue a credit note or post the missing shipment. Closed lines not "
            "invoiced as shipped: reopen the order and invoice or credit the difference."
        ),
        "line",
        _QTY,
        _order_quantities(DocType.SALES_ORDER, "not_over_shipped"),
    ),
    Check(
        "order_invoice_amount",
        _("Order amount vs invoice amount"),
        _(
            "Compare the invoices with the order (price, quantity, tax): request a credit note "
            "or a further invoice, or correct the order amount in the ERP and sync it again."
        ),
        "document",
        (
            Column("order_value", _("Order amount")),
            Column("invoiced_value", _("Invoiced amount")),
            Column("difference", _("Difference")),
        ),
        _order_vs_invoice_amount,
    ),
    Check(
        "negative_stock",
        _("Negative stock after counts"),
        _(
            "Check the stock adjustments posted for these count lines and reverse the wrong one; "
            "a negative count is a typing error: post the corrected count result."
        ),
        "line",
        (
            Column("book", _("Book qty")),
            Column("counted", _("Counted qty")),
            Column("adjusted", _("Adjusted qty")),
            Column("resulting", _("Resulting stock")),
        ),
        _negative_stock,
    ),
    Check(
        "closed_with_events",
        _("Closed documents with later business events"),
        _(
            "Business arrived after the close and waits in quarantine: reopen the document so "
            "the events apply, or confirm with the sender that they belong elsewhere."
        ),
        "document",
        (
            Column("quarantined", _("Quarantined events")),
            Column("latest_event", _("Latest event")),
            Column("closed_on", _("Close date")),
        ),
        _closed_with_events,
    ),
    Check(
        "complete_but_open",
        _("Complete documents still open"),
        _(
            "Every closing rule passes: close them (batch close from the queue, verdict “ready "
            "to close”), or check why the automatic close leaves them (switched off in the "
            "policy, grace days)."
        ),
        "document",
        (
            Column("doc_date", _("Date")),
            Column("last_activity", _("Last activity")),
            Column("amount", _("Amount")),
        ),
        _complete_but_open,
    ),
    Check(
        "settled_beyond_invoice",
        _("Receivables/payables settled beyond the invoice"),
        _(
            "More was paid or collected than invoiced: find the duplicate or misallocated "
            "payment and reverse or reallocate it, or post the missing invoice."
        ),
        "document",
        (
            Column("invoiced_value", _("Invoiced amount")),
            Column("settled_value", _("Settled amount")),
            Column("excess", _("Excess")),
        ),
        _settled_beyond_invoice,
    ),
    Check(
        "reopened_not_closed",
        _("Reopened documents not closed again"),
        _(
            "A reopen is meant to be short: finish the correction and close the document again, "
            "or ask its owner why it stays open."
        ),
        "document",
        (
            Column("reopened", _("Reopened at")),
            Column("reopen_event", _("Audit event #")),
        ),
        _reopened_not_closed,
    ),
)
CHECKS_BY_CODE = {check.code: check for check in CHECKS}

PROBLEM_LABELS: dict[str, str | Promise] = {
    "negative_quantity": _("negative received/shipped or invoiced quantity"),
    "over_fulfilled": _("received/shipped beyond the over-delivery tolerance"),
    "invoiced_beyond_fulfilled": _("invoiced more than received/shipped"),
    "closed_not_invoiced_as_fulfilled": _("closed with invoiced ≠ received/shipped"),
    "invoice_amount_differs": _("invoiced amount differs from the order amount"),
    "negative_resulting_stock": _("book + adjustments below zero"),
    "negative_count": _("negative count result"),
    "quarantined_events": _("events quarantined after the close"),
    "ready_but_open": _("every rule passes, still open"),
    "settled_beyond_invoice": _("settled more than invoiced"),
    "reopened_not_closed": _("reopened and not closed again"),
}


def check_for(code: str) -> Check:
    if code not in CHECKS_BY_CODE:
        raise InvalidInput(
            gettext_noop("unknown check '%(code)s'; use one of: %(allowed)s"),
            params={"code": code, "allowed": ", ".join(CHECKS_BY_CODE)},
            details={"field": "check", "allowed": list(CHECKS_BY_CODE)},
        )
    return CHECKS_BY_CODE[code]


# --- reads -----------------------------------------------------------------------------------


def diagnostic_rows(
    code: str, *, visible: Q | None = None, options: Options | None = None
) -> QuerySet[Any]:
    """The offending rows of one check, live, as dicts keyed by the check's column keys,
    restricted to documents matching `visible` (a condition on Document)."""
    check = check_for(code)
    rows = check.query(options or Options.default())
    if visible is not None and visible != Q():
        ids = Document.objects.filter(visible).values("pk")
        rows = rows.filter(doc_id__in=ids)
    return rows


def diagnostic_counts(*, visible: Q, options: Options | None = None) -> dict[str, int]:
    """Every check's count, live, over the documents matching `visible`: what a viewer over part
    of the company is shown instead of the stored (company-wide) counts of the last run."""
    chosen = options or Options.default()
    return {
        check.code: diagnostic_rows(check.code, visible=visible, options=chosen).count()
        for check in CHECKS
    }


def diagnostic_export_rows(check: Check, rows: QuerySet[Any]) -> Any:
    """Rows for closeout.core.exports, in the check's column order, problems in words."""
    keys = [c.key for c in check.columns]
    for row in rows.iterator(chunk_size=2000):
        values = dict(row)
        values["problem"] = str(PROBLEM_LABELS.get(values["problem"], values["problem"]))
        yield [values.get(k) for k in keys]


def diagnostic_run_last() -> DiagnosticRun | None:
    return DiagnosticRun.objects.select_related("run_by").first()


def report_viewers() -> list[AbstractBaseUser]:
    """Active users holding report.view over the whole company through a current grant: the
    stored counts a run notifies are the company's, not for a viewer of one unit."""
    from closeout.access.models import Role
    from closeout.access.selectors import holds_company_wide, users_with_role

    users: dict[Any, AbstractBaseUser] = {}
    for role in Role.objects.prefetch_related("includes"):
        if Perm.REPORT_VIEW in role.all_permissions():
            for user in users_with_role(role.code, org_unit=None, doc_type=None):
                users[user.pk] = user
    return sorted(
        (u for u in users.values() if holds_company_wide(u, Perm.REPORT_VIEW)),
        key=lambda u: u.get_username(),
    )


# --- the run ---------------------------------------------------------------------------------


def diagnostics_run(
    *,
    actor: AbstractBaseUser | None,
    trigger: str = DiagnosticTrigger.MANUAL,
    stale_days: int | None = None,
) -> DiagnosticRun:
    """Count every check's offending rows, store the run, audit it, and (scheduled runs that
    find problems) notify the users who may view reports. `actor` None: the system (beat, or
    the command line without --as)."""
    if trigger not in DiagnosticTrigger.values:
        raise InvalidInput(
            gettext_noop("unknown trigger '%(trigger)s'; use manual or scheduled"),
            params={"trigger": trigger},
            details={"field": "trigger"},
        )
    if actor is not None:
        # A stored run counts the whole company.
        require_company_wide(actor, Perm.REPORT_VIEW, what="a stored run of the consistency checks")
    options = Options.default(stale_days)
    started, clock = timezone.now(), time.monotonic()
    counts = {check.code: check.query(options).count() for check in CHECKS}
    duration_ms = int((time.monotonic() - clock) * 1000)
    problems = sum(counts.values())
    with transaction.atomic():
        run = DiagnosticRun.objects.create(
            started_at=started,
            finished_at=timezone.now(),
            duration_ms=duration_ms,
            trigger=trigger,
            run_by_id=actor.pk if actor is not None else None,
            counts=counts,
            problems=problems,
        )
        audit_record(
            actor=actor,
            action=AuditAction.DIAGNOSTICS_RUN,
            object_type=AuditObject.DIAGNOSTIC_RUN,
            object_id=run.pk,
            object_repr=f"diagnostics #{run.pk}",
            data={
                "trigger": trigger,
                "counts": counts,
                "problems": problems,
                "duration_ms": duration_ms,
                "reopen_stale_days": options.stale_days,
            },
        )
        if trigger == DiagnosticTrigger.SCHEDULED and problems:
            from closeout.notifications.services import notify

            notify(
                recipients=report_viewers(),
                kind=NoticeKind.DIAGNOSTICS_PROBLEMS,
                context={
                    "run_id": run.pk,
                    "problems": problems,
                    "counts": {code: n for code, n in counts.items() if n},
                },
                link=reverse("web:diagnostics"),
            )
    return run


def decimal_or_none(value: Any) -> Any:
    """Measures read back from SQLite may be floats: shown with 4 places like stored values."""
    if value is None:
        return None
    if isinstance(value, float):
        value = Decimal(str(value))
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.0001")).normalize() + 0
    return value


__all__ = [
    "CHECKS",
    "PROBLEM_LABELS",
    "Check",
    "Column",
    "Options",
    "check_for",
    "diagnostic_counts",
    "diagnostic_export_rows",
    "diagnostic_rows",
    "diagnostic_run_last",
    "diagnostics_run",
    "report_viewers",
]
