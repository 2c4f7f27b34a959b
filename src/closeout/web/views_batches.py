"""Batch close pages: a new batch, its page, live progress and the results CSV."""

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language, gettext, pgettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from closeout.batches.models import BatchAction, BatchJob, BatchState
from closeout.batches.selectors import batch_results
from closeout.batches.services import (
    batch_cancel,
    batch_create,
    batch_preview,
    batch_resume,
    batch_start,
)
from closeout.batches.undo import batch_undo_create, undo_facts
from closeout.core.errors import DomainError, PermissionDenied
from closeout.core.exports import check_format, export_response
from closeout.web import feedback
from closeout.web.forms import (
    BatchForm,
    QueueForm,
)
from closeout.web.present import batch_refused
from closeout.web.templatetags.closeout_labels import outcome_label, predicted_text, result_text
from closeout.web.views import _attach, _user


@login_required
@require_POST
def batch_new(request: HttpRequest) -> HttpResponse:
    """From the queue: the chosen numbers or the whole filter, a reason, then create + preview."""
    user = _user(request)
    doc_type = request.POST.get("doc_type", "")
    numbers = request.POST.getlist("numbers")
    everything = request.POST.get("all") == "1"
    form = BatchForm(request.POST if "reason" in request.POST else None)
    queue_form = QueueForm(request.POST, doc_type=doc_type)
    # The filter came from the queue page: its errors are shown above the form.
    filter_errors = [
        f"{queue_form.fields[field].label}: {message}" if field in queue_form.fields else message
        for field, messages in queue_form.errors.items()
        for message in messages
    ]
    refused = bool(filter_errors)
    if not refused and form.is_bound and form.is_valid():
        try:
            job = batch_create(
                actor=user,
                action=BatchAction.CLOSE,
                doc_type=doc_type,
                numbers=None if everything else numbers,
                queue_filter=queue_form.filter_dict(doc_type) if everything else None,
                reason_code=form.cleaned_data["reason"],
                remark=form.cleaned_data["remark"],
                close_date=form.cleaned_data["close_date"],
            )
            job = batch_preview(actor=user, job=job)
            needs_remark = job.predicted.get("needs_remark", 0)
            if not needs_remark:
                return redirect("web:batch", pk=job.pk)
            batch_cancel(actor=user, job=job)
            form.add_error("remark", feedback.remark_needed(needs_remark))
            refused = True
        except DomainError as exc:
            _attach(form, exc)
            refused = True
    refused = refused or (form.is_bound and not form.is_valid())
    hidden = [(k, v) for k in request.POST for v in request.POST.getlist(k)]
    hidden = [(k, v) for k, v in hidden if k not in {"csrfmiddlewaretoken", *form.fields}]
    return render(
        request,
        "web/batch_new.html",
        {
            "form": form,
            "filter_errors": filter_errors,
            "hidden": hidden,
            "count": None if everything else len(numbers),
            "doc_type": doc_type,
            "help": "batch",
        },
        status=400 if refused else 200,
    )


def job_locked_for(request: HttpRequest, pk: int) -> BatchJob:
    job = get_object_or_404(BatchJob, pk=pk)
    if job.created_by_id != _user(request).pk:
        raise PermissionDenied(
            gettext("Batch #%(id)s belongs to another user.") % {"id": pk},
            details={"rule": "owner_only"},
        )
    return job


@login_required
@require_http_methods(["GET", "POST"])
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = job_locked_for(request, pk)
    if request.method == "POST":
        if request.POST.get("op") == "start":
            batch_start(
                actor=_user(request),
                job=job,
                workers=1,
                when_refused="skip" if request.POST.get("only_closable") else "refuse",
            )
            messages.success(request, feedback.batch_started(job))
        elif request.POST.get("op") == "cancel":
            batch_cancel(actor=_user(request), job=job)
        elif request.POST.get("op") == "resume":
            batch_resume(actor=_user(request), job=job, workers=1)
        elif request.POST.get("op") == "undo":
            undo_job = batch_undo_create(actor=_user(request), job_id=job.pk)
            batch_preview(actor=_user(request), job=undo_job)
            return redirect("web:batch", pk=undo_job.pk)
        return redirect("web:batch", pk=job.pk)
    items = list(batch_results(job).select_related("document")[:500])
    refused, closable = batch_refused(job)
    return render(
        request,
        "web/batch.html",
        {
            "job": job,
            "items": items,
            "help": "batch",
            "refused": refused,
            "closable": closable,
            **_progress(job),
            **undo_facts(job),
        },
    )


def _progress(job: BatchJob) -> dict[str, Any]:
    return {
        "job": job,
        "running": job.state in (BatchState.QUEUED, BatchState.RUNNING),
        "started": job.state not in (BatchState.DRAFT, BatchState.PREVIEWED),
        "resumable": job.state in (BatchState.FAILED, BatchState.CANCELLED),
    }


@login_required
@require_GET
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    job = job_locked_for(request, pk)
    response = render(request, "web/_batch_progress.html", _progress(job))
    ended = (BatchState.DONE, BatchState.CANCELLED, BatchState.FAILED)
    if job.state in ended and request.htmx:  # type: ignore[attr-defined]
        # The run ended: reload the page so the per-document results show.
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_GET
def batch_csv(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The per-document results of a batch, as CSV (default) or .xlsx (`format`)."""
    job = job_locked_for(request, pk)
    fmt = check_format(request.GET.get("format", "csv"))
    items = batch_results(job).iterator(chunk_size=2000)
    if (get_language() or "").startswith("en"):  # the codes, as integrations read them
        rows: Iterator[list[Any]] = (
            [i.label, i.state, i.predicted, i.predicted_message, i.outcome, i.message]
            for i in items
        )
    else:  # issue 17: words in the page language, never a raw code
        rows = (
            [
                i.label,
                str(i.get_state_display()),
                outcome_label(i.predicted),
                predicted_text(i),
                outcome_label(i.outcome),
                result_text(i),
            ]
            for i in items
        )
    return export_response(
        fmt,
        filename=f"batch-{job.pk}",
        headers=[
            pgettext("batch export", "document"),
            pgettext("batch export", "state"),
            pgettext("batch export", "predicted"),
            pgettext("batch export", "predicted_message"),
            pgettext("batch export", "outcome"),
            pgettext("batch export", "message"),
        ],
        rows=rows,
        sheet_title=pgettext("batch export", "batch %(job)s") % {"job": job.pk},
    )
