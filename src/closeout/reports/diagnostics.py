"""Consistency checks (数据校验, S21): each check is one set-based query over documents or lines
that lists the offending rows; a run counts them, records who ran it and warns report viewers.

This module holds the list of checks in the order the page, the API and the CLI show them, the
reads (a check's rows, the counts a viewer may see) and the run. The checks are written by family
in diagnostic_quantities, diagnostic_amounts and diagnostic_states, out of the building blocks of
diagnostic_base. They reuse the closing rule definitions (closing/rules.py, documents/types/) and
the close policies' tolerances wherever a rule already says what "wrong" means, so a check and the
close never disagree about a line.
"""

import time
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import InvalidInput
from closeout.core.notice_kinds import NoticeKind
from closeout.documents.models import Document
from closeout.reports.diagnostic_amounts import (
    AMOUNT_PROBLEMS,
    ORDER_INVOICE_AMOUNT,
    SETTLED_BEYOND_INVOICE,
)
from closeout.reports.diagnostic_base import Check, Options
from closeout.reports.diagnostic_quantities import (
    NEGATIVE_STOCK,
    PO_QUANTITIES,
    QUANTITY_PROBLEMS,
    SO_QUANTITIES,
)
from closeout.reports.diagnostic_states import (
    CLOSED_WITH_EVENTS,
    COMPLETE_BUT_OPEN,
    REOPENED_NOT_CLOSED,
    STATE_PROBLEMS,
)
from closeout.reports.models import DiagnosticRun, DiagnosticTrigger

CHECKS: tuple[Check, ...] = (
    PO_QUANTITIES,
    SO_QUANTITIES,
    ORDER_INVOICE_AMOUNT,
    NEGATIVE_STOCK,
    CLOSED_WITH_EVENTS,
    COMPLETE_BUT_OPEN,
    SETTLED_BEYOND_INVOICE,
    REOPENED_NOT_CLOSED,
)
CHECKS_BY_CODE = {check.code: check for check in CHECKS}

PROBLEM_LABELS: dict[str, str | Promise] = {
    **QUANTITY_PROBLEMS,
    **AMOUNT_PROBLEMS,
    **STATE_PROBLEMS,
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
            _warn_report_viewers(run)
    return run


def _warn_report_viewers(run: DiagnosticRun) -> None:
    """A notice to the users who may view reports: what a scheduled run found."""
    from closeout.notifications.services import notify

    notify(
        recipients=report_viewers(),
        kind=NoticeKind.DIAGNOSTICS_PROBLEMS,
        context={
            "run_id": run.pk,
            "problems": run.problems,
            "counts": {code: n for code, n in run.counts.items() if n},
        },
        link=reverse("web:diagnostics"),
    )


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
    "check_for",
    "diagnostic_counts",
    "diagnostic_export_rows",
    "diagnostic_rows",
    "diagnostic_run_last",
    "diagnostics_run",
    "report_viewers",
]
