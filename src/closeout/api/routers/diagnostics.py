"""Consistency checks (数据校验): the checks with the last run's counts, a run, the live
offending rows of one check; and the post-close verification of a batch (结案后校验)."""

from typing import Annotated, Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext_noop
from ninja import Path, Router, Status

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require
from closeout.api import present
from closeout.api.routers._common import ERRORS, caller
from closeout.api.schemas import (
    DiagnosticCheckOut,
    DiagnosticRowsPage,
    DiagnosticRunOut,
    DiagnosticsOut,
    DiagnosticsRunIn,
    VerificationOut,
)
from closeout.api.selectors import cursor_value
from closeout.batches.models import BatchJob
from closeout.core.errors import InvalidInput, NotFound
from closeout.reports.diagnostics import (
    CHECKS,
    PROBLEM_LABELS,
    check_for,
    diagnostic_counts,
    diagnostic_rows,
    diagnostic_run_last,
    diagnostics_run,
)
from closeout.reports.models import DiagnosticTrigger
from closeout.reports.verification import (
    batch_verify,
    verification_latest,
    verification_visible_to,
)

router = Router(tags=["diagnostics"])
# The checks by code, in the schema: an integration (and a test generating calls from the
# schema) sees which exist; "run" is the action beside them, not a check.
CHECK_PATTERN = "^(" + "|".join(check.code for check in CHECKS) + ")$"
verification_router = Router(tags=["diagnostics"])

MAX_LIMIT = 1000
WHAT = "the consistency checks"


@router.get(
    "",
    response={200: DiagnosticsOut, **ERRORS},
    summary="The checks and the last run (for a viewer over part of the company: live counts of "
    "the documents in scope, and no stored run)",
)
def diagnostics_overview(request: HttpRequest) -> Any:
    actor = caller(request)
    require(actor, Perm.REPORT_VIEW, what=WHAT)
    visible = documents_visible_to(actor, Perm.REPORT_VIEW)
    run = diagnostic_run_last() if visible == Q() else None
    counts: dict[str, int] = (
        (run.counts if run is not None else {})
        if visible == Q()
        else diagnostic_counts(visible=visible)
    )
    return DiagnosticsOut(
        last_run=present.diagnostic_run_out(run) if run is not None else None,
        checks=[
            DiagnosticCheckOut(
                code=check.code,
                label=str(check.label),
                what_next=str(check.what_next),
                level=check.level,
                columns=[c.key for c in check.columns],
                count=counts.get(check.code),
            )
            for check in CHECKS
        ],
    )


@router.post(
    "/run",
    response={201: DiagnosticRunOut, **ERRORS},
    summary="Run every check now and return the stored run",
)
def diagnostics_run_now(request: HttpRequest, payload: DiagnosticsRunIn | None = None) -> Any:
    """Synchronous (the page queues it): an integration wants the counts it asked for; the
    checks are counting queries. Send an `Idempotency-Key` to retry safely."""
    run = diagnostics_run(
        actor=caller(request),
        trigger=DiagnosticTrigger.MANUAL,
        stale_days=payload.stale_days if payload is not None else None,
    )
    return Status(201, present.diagnostic_run_out(run))


@router.get(
    "/{check}",
    response={200: DiagnosticRowsPage, **ERRORS},
    summary="The offending rows of one check, live (documents the caller may view)",
)
def diagnostic_detail(
    request: HttpRequest,
    check: Annotated[str, Path(pattern=CHECK_PATTERN)],
    cursor: str | None = None,
    limit: int = 200,
) -> Any:
    actor = caller(request)
    require(actor, Perm.REPORT_VIEW, what=WHAT)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            gettext_noop("limit must be 1 to %(max)s"),
            details={"field": "limit"},
            params={"max": MAX_LIMIT},
        )
    spec = check_for(check)
    start = cursor_value(cursor) or 0
    visible = documents_visible_to(actor, Perm.REPORT_VIEW)
    rows = list(diagnostic_rows(spec.code, visible=visible)[start : start + limit + 1])
    more = len(rows) > limit
    keys = [c.key for c in spec.columns]
    return DiagnosticRowsPage(
        check=spec.code,
        columns=keys,
        items=[present.diagnostic_row_out(r, keys, PROBLEM_LABELS) for r in rows[:limit]],
        next_cursor=str(start + limit) if more else None,
    )


def _job(request: HttpRequest, job_id: int) -> BatchJob:
    """The batch, for its creator or a holder of `report.view` over all its documents (as on
    the page); a batch of another unit is answered like a missing one."""
    job = BatchJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(
            gettext_noop("no batch #%(job_id)s"),
            details={"field": "batch"},
            params={"job_id": job_id},
        )
    actor = caller(request)
    if job.created_by_id != actor.pk:
        require(actor, Perm.REPORT_VIEW, what=f"the verification of batch #{job_id}")
        if not verification_visible_to(actor, job):
            raise NotFound(
                gettext_noop("no batch #%(job_id)s"),
                details={"field": "batch"},
                params={"job_id": job_id},
            )
    return job


@verification_router.get(
    "/{job_id}/verification",
    response={200: VerificationOut, **ERRORS},
    summary="The latest post-close verification of a batch",
)
def verification_detail(request: HttpRequest, job_id: int) -> Any:
    job = _job(request, job_id)
    result = verification_latest(job)
    if result is None:
        raise NotFound(
            gettext_noop("batch #%(job_id)s has not been verified yet; POST to verify it"),
            details={"field": "batch"},
            params={"job_id": job_id},
        )
    return present.verification_out(result)


@verification_router.post(
    "/{job_id}/verification",
    response={201: VerificationOut, **ERRORS},
    summary="Verify a batch's effects now (states, commitments, audit trail)",
)
def verification_run(request: HttpRequest, job_id: int) -> Any:
    job = _job(request, job_id)
    result = batch_verify(job_id=job.pk, actor=caller(request))
    return Status(201, present.verification_out(result))


__all__ = ["router", "verification_router"]
