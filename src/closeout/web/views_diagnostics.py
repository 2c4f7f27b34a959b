"""Pages of the consistency checks (数据校验, S21) and of the post-close verification of a batch
(结案后校验, S16): thin, they call the reports selectors and services."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET, require_http_methods

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require, require_company_wide, user_has_perm
from closeout.batches.models import BatchJob
from closeout.core.errors import PermissionDenied
from closeout.core.exports import check_format, export_response
from closeout.core.tasks import enqueue
from closeout.reports.diagnostic_base import reopen_stale_days
from closeout.reports.diagnostics import (
    CHECKS,
    PROBLEM_LABELS,
    check_for,
    decimal_or_none,
    diagnostic_counts,
    diagnostic_export_rows,
    diagnostic_rows,
    diagnostic_run_last,
)
from closeout.reports.tasks import diagnostics_task
from closeout.reports.verification import (
    batch_verify,
    verification_latest,
    verification_visible_to,
)
from closeout.web.views import NOT_FOUND, _user

DRILL_PAGE_SIZE = 50


def _schedule() -> timedelta | None:
    entry = getattr(settings, "CELERY_BEAT_SCHEDULE", {}).get("diagnostics")
    if not entry:
        return None
    return timedelta(seconds=float(entry["schedule"]))


@login_required
@require_http_methods(["GET", "POST"])
def diagnostics(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    require(user, Perm.REPORT_VIEW, what=gettext("the consistency checks"))
    visible = documents_visible_to(user, Perm.REPORT_VIEW)
    if request.method == "POST":
        # A stored run counts the whole company.
        require_company_wide(user, Perm.REPORT_VIEW, what=gettext("a stored run of the checks"))
        # At a million documents the checks take tens of seconds: they run in the
        # background (a worker, or a thread of this process) and the page shows the run
        # when it is stored.
        enqueue(diagnostics_task, user.pk)
        return redirect(reverse("web:diagnostics") + "?started=1")
    # A viewer over part of the company sees live counts of the documents in scope; the
    # stored run's counts are the whole company's.
    scoped = visible != Q()
    run = None if scoped else diagnostic_run_last()
    counts: dict[str, int] = (
        diagnostic_counts(visible=visible) if scoped else run.counts if run is not None else {}
    )
    rows = [(check, counts.get(check.code)) for check in CHECKS]
    schedule = _schedule()
    return render(
        request,
        "web/diagnostics.html",
        {
            "run": run,
            "scoped": scoped,
            "rows": rows,
            "schedule_hours": schedule.total_seconds() / 3600 if schedule else None,
            "stale_days": reopen_stale_days(),
            "started": request.GET.get("started") == "1",
            "help": "diagnostics",
        },
    )


@login_required
@require_GET
def diagnostic(request: HttpRequest, check: str) -> HttpResponseBase:
    """One check's offending documents or lines, live, limited to what the viewer may see."""
    user = _user(request)
    require(user, Perm.REPORT_VIEW, what=gettext("the consistency checks"))
    spec = check_for(check)
    rows = diagnostic_rows(spec.code, visible=documents_visible_to(user, Perm.REPORT_VIEW))
    fmt = request.GET.get("format", "")
    if fmt:
        check_format(fmt)
        return export_response(
            fmt,
            filename=f"diagnostics-{spec.code}",
            headers=[str(c.label) for c in spec.columns],
            rows=diagnostic_export_rows(spec, rows),
            sheet_title=spec.code if (get_language() or "").startswith("en") else str(spec.label),
        )
    page = Paginator(rows, DRILL_PAGE_SIZE).get_page(request.GET.get("page"))
    keys = [c.key for c in spec.columns]
    table = [
        (
            row["doc_id"],
            [
                str(PROBLEM_LABELS.get(row[k], row[k]))
                if k == "problem"
                else decimal_or_none(row[k])
                for k in keys
            ],
        )
        for row in page.object_list
    ]
    return render(
        request,
        "web/diagnostic.html",
        {"check": spec, "page": page, "table": table, "help": "diagnostics"},
    )


@login_required
@require_http_methods(["GET", "POST"])
def batch_verification(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The last post-close verification of a batch; report viewers may run it again."""
    user = _user(request)
    job = BatchJob.objects.filter(pk=pk).first()
    may_verify = user_has_perm(user, Perm.REPORT_VIEW)
    if job is None or (may_verify and not verification_visible_to(user, job)):
        # Another unit's batch is answered like a missing one.
        raise Http404(NOT_FOUND)
    if job.created_by_id != user.pk and not may_verify:
        raise PermissionDenied(
            gettext("Batch #%(id)s belongs to another user.") % {"id": pk},
            details={"permission": str(Perm.REPORT_VIEW), "org_unit": None},
        )
    if request.method == "POST":
        batch_verify(job_id=job.pk, actor=user)
        return redirect("web:batch_verification", pk=job.pk)
    context: dict[str, Any] = {
        "job": job,
        "verification": verification_latest(job),
        "may_verify": may_verify,
        "help": "diagnostics",
    }
    return render(request, "web/batch_verification.html", context)
