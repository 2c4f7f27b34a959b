"""Pages of the workbench. Each view parses input, calls a selector or a service, and renders;
domain errors become plain messages next to the field or at the top, never a traceback."""

from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.approvals.models import CloseRequest, RequestState
from closeout.approvals.selectors import (
    approvers_for,
    audit_scope,
    request_get_visible,
    requests_of,
    requests_waiting_for,
)
from closeout.approvals.services import (
    close_request_approve,
    close_request_reject,
    close_request_submit,
    close_request_withdraw,
    close_requests_decide_batch,
    reopen_request_submit,
)
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.selectors import audit_events_for
from closeout.audit.services import audit_chain_verify, audit_record
from closeout.batches.models import BatchJob, BatchState
from closeout.batches.selectors import batch_results
from closeout.batches.services import (
    batch_cancel,
    batch_create,
    batch_preview,
    batch_resume,
    batch_start,
)
from closeout.batches.undo import batch_undo_create, undo_facts
from closeout.closing.dimensions import dimensions_of, lines_with_dimensions
from closeout.closing.selectors import (
    close_checklist_for,
    close_checklist_with_risks,
    close_preview_for,
)
from closeout.closing.services import document_close, document_reopen
from closeout.core.errors import DomainError, InvalidTransition, PermissionDenied
from closeout.core.exports import check_format, export_response
from closeout.core.inputs import is_digits
from closeout.documents.models import CloseState, Document
from closeout.notifications.selectors import inbox_for
from closeout.notifications.services import notification_mark_read
from closeout.web import feedback
from closeout.web.forms import (
    AuditFilterForm,
    BatchForm,
    CloseForm,
    DecideForm,
    QueueForm,
    ReopenForm,
    ThrottledLoginForm,
)
from closeout.web.present import batch_refused, close_facts, close_plan
from closeout.web.templatetags.closeout_web import lang_part

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
FORM_FIELDS = {"reason": "reason", "remark": "remark", "close_date": "close_date"}
FORM_FIELDS |= {"lines": "lines", "attachments": "attachments", "comment": "comment"}


class WorkbenchLoginView(LoginView):
    template_name = "web/login.html"
    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True


def _user(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    assert not isinstance(user, AnonymousUser)  # noqa: S101 (login_required ran first)
    return user


def refusal_text(error: DomainError) -> str:
    """A domain error in plain words; a permission refusal names the missing permission."""
    if (
        isinstance(error, PermissionDenied)
        and error.details.get("permission")
        and error.details.get("rule") != "company_wide"
    ):
        code = str(error.details["permission"])
        label = lang_part(Perm(code).label) if code in Perm.values else code
        return gettext(
            "Not allowed: you lack the permission “%(label)s” (%(code)s)%(scope)s. "
            "Ask an administrator for a grant."
        ) % {
            "label": label,
            "code": code,
            "scope": gettext(" in %(unit)s") % {"unit": error.details["org_unit"]}
            if error.details.get("org_unit")
            else "",
        }
    return error.text()


def _attach(form: forms.Form, error: DomainError) -> None:
    """Show a domain error next to the field it names, else above the form."""
    field = FORM_FIELDS.get(str(error.details.get("field", "")))
    if field and field in form.fields:
        form.add_error(field, refusal_text(error))
    else:
        form.add_error(None, refusal_text(error))


def _refused(request: HttpRequest, error: DomainError) -> HttpResponse:
    status = 403 if isinstance(error, PermissionDenied) else error.http_status
    return render(request, "web/refused.html", {"message": refusal_text(error)}, status=status)


# --- home and queue ------------------------------------------------------------------------


# --- document detail, close, reopen --------------------------------------------------------


# One answer for a missing page and for one outside the viewer's scope.
NOT_FOUND = "No such page."


def _document_for(request: HttpRequest, pk: int) -> Document:
    """The document, when the user may view it; a 404 like a missing one otherwise."""
    document = Document.objects.select_related("org_unit", "partner").filter(pk=pk).first()
    if document is None or not _may(_user(request), Perm.DOCUMENT_VIEW, document):
        raise Http404(NOT_FOUND)
    return document


def _may(user: AbstractBaseUser, perm: str, document: Document) -> bool:
    """Whether to offer an action; the service checks again when it is taken."""
    return user_has_perm(user, perm, org_unit=document.org_unit, doc_type=document.doc_type)


def _english() -> bool:
    return (get_language() or "").startswith("en")


@login_required
@require_GET
def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = _document_for(request, pk)
    user = _user(request)
    lines = list(document.lines.select_related("item").order_by("line_no"))
    can_close = document.close_state == CloseState.OPEN and any(
        _may(user, p, document) for p in (Perm.CLOSE_DIRECT, Perm.CLOSE_REQUEST)
    )
    # Risk warnings (S24) only for someone who may close; the reason is chosen in the dialog.
    checklist = (
        close_checklist_with_risks(document, actor=user)
        if can_close
        else close_checklist_for(document)
    )
    events = list(document.events.select_related("line").order_by("occurred_at", "pk"))
    history = audit_events_for(AuditObject.DOCUMENT, document.pk)
    from closeout.web.views_dimensions import dimension_context  # builds on this module
    from closeout.web.views_hold import hold_context  # views_hold builds on this module

    plan = close_plan(document, checklist, close_preview_for(document)) if can_close else None
    dimensions = dimensions_of(document.doc_type)
    for line, states in lines_with_dimensions(document, lines):
        # Each line's state per close dimension (关闭维度), in the type's order.
        line.dimension_cells = [(d, states[d.code]) for d in dimensions]  # type: ignore[attr-defined]
    return render(
        request,
        "web/document.html",
        {
            "document": document,
            "lines": lines,
            "dimensions": dimensions,
            "checklist": checklist,
            "events": events,
            "history": history,
            "plan": plan,
            "facts": close_facts(document, lines),
            "can_close": can_close,
            "can_reopen": document.close_state == CloseState.CLOSED
            and any(_may(user, p, document) for p in (Perm.REOPEN_APPROVE, Perm.REOPEN_REQUEST)),
            "requests": CloseRequest.objects.filter(document=document).order_by("-pk")[:10],
            "english": _english(),
            "user_obj": user,
            "help": "document",
            **hold_context(document, user),
            **dimension_context(document, user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def document_close_view(request: HttpRequest, pk: int) -> HttpResponse:
    document = _document_for(request, pk)
    user = _user(request)
    open_lines = list(
        document.lines.filter(close_state=CloseState.OPEN)
        .order_by("line_no")
        .values_list("line_no", flat=True)
    )
    form = CloseForm(request.POST or None, request.FILES or None, line_nos=open_lines)
    needs_approval = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        line_nos = form.chosen_lines(open_lines)
        common = {
            "actor": user,
            "document": document,
            "reason_code": data["reason"],
            "remark": data["remark"],
            "close_date": data["close_date"],
            "line_nos": line_nos,
        }
        try:
            if request.POST.get("submit_as") == "preview":
                pass
            elif request.POST.get("submit_as") == "request":
                created = close_request_submit(**common, attachments=form.attachment_files())
                messages.success(request, feedback.requested(created))
                return redirect("web:request", pk=created.pk)
            else:
                messages.success(request, feedback.closed(document_close(**common)))
                return redirect("web:document", pk=document.pk)
        except InvalidTransition as exc:
            if exc.details.get("needs") == "close_request":
                needs_approval = refusal_text(exc)
            else:
                _attach(form, exc)
        except DomainError as exc:
            _attach(form, exc)
    chosen = form.cleaned_data.get("lines") if form.is_bound and form.is_valid() else None
    line_nos = sorted(chosen) if chosen else None
    checklist = close_checklist_with_risks(
        document, actor=user, reason_code=request.POST.get("reason", ""), line_nos=line_nos
    )
    preview = close_preview_for(document, line_nos=line_nos)
    return render(
        request,
        "web/close.html",
        {
            "document": document,
            "form": form,
            "checklist": checklist,
            "preview": preview,
            "plan": close_plan(document, checklist, preview),
            "needs_approval": needs_approval,
            "can_direct": user_has_perm(
                user, Perm.CLOSE_DIRECT, org_unit=document.org_unit, doc_type=document.doc_type
            ),
            "english": _english(),
            "help": "close",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def document_reopen_view(request: HttpRequest, pk: int) -> HttpResponse:
    document = _document_for(request, pk)
    user = _user(request)
    direct = user_has_perm(
        user, Perm.REOPEN_APPROVE, org_unit=document.org_unit, doc_type=document.doc_type
    )
    form = ReopenForm(request.POST or None)
    needs_request = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if direct and request.POST.get("submit_as") != "request":
                document_reopen(
                    actor=user, document=document, reason_code=data["reason"], remark=data["remark"]
                )
                messages.success(request, feedback.reopened(document))
                return redirect("web:document", pk=document.pk)
            created = reopen_request_submit(
                actor=user, document=document, reason_code=data["reason"], remark=data["remark"]
            )
            messages.success(request, feedback.requested(created))
            return redirect("web:request", pk=created.pk)
        except InvalidTransition as exc:
            if exc.details.get("needs") == "reopen_request":
                needs_request = refusal_text(exc)
            else:
                _attach(form, exc)
        except DomainError as exc:
            _attach(form, exc)
    return render(
        request,
        "web/reopen.html",
        {
            "document": document,
            "form": form,
            "direct": direct,
            "needs_request": needs_request,
            "help": "reopen",
        },
    )


# --- approvals -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def inbox(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    waiting = requests_waiting_for(user)
    form = DecideForm(request.POST or None, request_ids=[r.pk for r in waiting])
    results = []
    if request.method == "POST" and form.is_valid():
        ids = form.cleaned_data["requests"]
        if not ids:
            form.add_error("requests", gettext("Choose at least one request."))
        else:
            try:
                results = close_requests_decide_batch(
                    actor=user,
                    request_ids=ids,
                    decision=form.cleaned_data["decision"],
                    comment=form.cleaned_data["comment"],
                )
            except DomainError as exc:
                _attach(form, exc)
            else:
                feedback.decided_many(request, results, form.cleaned_data["decision"])
                waiting = requests_waiting_for(user)
                form = DecideForm(request_ids=[r.pk for r in waiting])
    return render(
        request,
        "web/inbox.html",
        {
            "waiting": waiting,
            "mine": requests_of(user).order_by("-pk")[:50],
            "form": form,
            "results": results,
            "help": "inbox",
        },
    )


def _snapshot_vs_now(req: CloseRequest) -> list[dict[str, Any]]:
    """The checklist stored at submission next to the checklist evaluated now."""
    if req.action != "close" or req.state != RequestState.PENDING:
        now_by_rule: dict[str, Any] = {}
    else:
        checks = close_checklist_for(req.document, line_nos=req.line_nos).checks
        now_by_rule = {c.rule.code: c for c in checks}
    english = _english()
    rows = []
    for item in req.checklist:
        now = now_by_rule.get(item["rule"])
        rows.append(
            {
                "rule": item["rule"],
                "label": item["label_en"] if english else item["label_zh"],
                "severity": item["severity"],
                "then_passed": item["passed"],
                "then_measured": item["measured"],
                "now_passed": None if now is None else now.passed,
                "now_measured": None if now is None else now.measured,
                "changed": now is not None and now.passed != item["passed"],
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    req = request_get_visible(user, pk)
    if req is None:
        raise Http404(NOT_FOUND)
    form = DecideForm(request.POST or None, request_ids=[req.pk])
    if request.method == "POST" and form.is_valid():
        decision = form.cleaned_data["decision"]
        comment = form.cleaned_data["comment"]
        try:
            if request.POST.get("withdraw"):
                close_request_withdraw(actor=user, request=req, reason=comment)
                messages.success(request, feedback.withdrawn(req))
            elif decision == "approve":
                done = close_request_approve(actor=user, request=req, comment=comment)
                messages.success(request, feedback.approved(done))
            else:
                close_request_reject(actor=user, request=req, comment=comment)
                messages.success(request, feedback.rejected(req))
            return redirect("web:request", pk=req.pk)
        except DomainError as exc:
            _attach(form, exc)
        req.refresh_from_db()
    return render(
        request,
        "web/request.html",
        {
            "req": req,
            "form": form,
            "comparison": _snapshot_vs_now(req),
            "decisions": req.decisions.select_related("decider").order_by("round", "step_order"),
            "may_decide": req.state == RequestState.PENDING
            and any(u.pk == user.pk for u in approvers_for(req)),
            "may_withdraw": req.state == RequestState.PENDING and req.requester_id == user.pk,
            "help": "inbox",
        },
    )


# --- batch close ---------------------------------------------------------------------------


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
                action="close",
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


def _job_for(request: HttpRequest, pk: int) -> BatchJob:
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
    job = _job_for(request, pk)
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
    job = _job_for(request, pk)
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
    job = _job_for(request, pk)
    fmt = check_format(request.GET.get("format", "csv"))
    rows = (
        [item.label, item.state, item.predicted, item.predicted_message, item.outcome, item.message]
        for item in batch_results(job).iterator(chunk_size=2000)
    )
    return export_response(
        fmt,
        filename=f"batch-{job.pk}",
        headers=["document", "state", "predicted", "predicted_message", "outcome", "message"],
        rows=rows,
        sheet_title=f"batch {job.pk}",
    )


# --- audit log and notifications -----------------------------------------------------------


def _audit_filtered(form: AuditFilterForm, user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    """The log as the form filters it, within what `user` may read (audit_scope)."""
    events: QuerySet[AuditEvent] = AuditEvent.objects.filter(audit_scope(user)).order_by("-seq")
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        if d["document"]:
            text = d["document"].strip()
            events = events.filter(
                Q(object_type=AuditObject.DOCUMENT)
                & (Q(object_repr__icontains=text) | Q(object_id=text) if text else Q())
            )
        if d["user"]:
            events = events.filter(actor_name__iexact=d["user"].strip())
        if d["action"] is not None:
            events = events.filter(action=d["action"])
        tz = timezone.get_current_timezone()
        if d["date_from"]:
            events = events.filter(at__gte=datetime.combine(d["date_from"], time.min, tz))
        if d["date_to"]:
            events = events.filter(at__lte=datetime.combine(d["date_to"], time.max, tz))
    return events


def _audit_export(user: AbstractBaseUser, form: AuditFilterForm, fmt: str) -> HttpResponseBase:
    """The whole filtered log (not one page), recorded as a data export."""
    check_format(fmt)
    shown = {k: v for k, v in (form.cleaned_data if form.is_bound else {}).items() if v}
    shown.pop("before", None)
    with transaction.atomic():
        audit_record(
            actor=user,
            action=AuditAction.DATA_EXPORTED,
            object_type=AuditObject.AUDIT_LOG,
            object_id="audit",
            object_repr="audit log",
            data={"filter": {k: str(v) for k, v in shown.items()}, "format": fmt},
        )
    events = _audit_filtered(form, user).iterator(chunk_size=2000)
    return export_response(
        fmt,
        filename="audit-log",
        headers=[
            "seq",
            "time",
            "user",
            "action",
            "object_type",
            "object_id",
            "object",
            "reason",
            "request_id",
            "http_request_id",
            "data",
            "hash",
        ],
        rows=(
            [
                e.seq,
                e.at,
                e.actor_name,
                AuditAction(e.action).label,
                e.object_type,
                e.object_id,
                e.object_repr,
                e.reason,
                e.request_id,
                e.http_request_id,
                e.data,
                e.hash,
            ]
            for e in events
        ),
        sheet_title="audit",
    )


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    require(user, Perm.AUDIT_VIEW, what=gettext("the audit log"))
    form = AuditFilterForm(request.GET or None)
    valid = not form.is_bound or form.is_valid()
    if request.GET.get("format") and valid:
        return _audit_export(user, form, request.GET["format"])
    events = _audit_filtered(form, user)
    if form.is_bound and valid and form.cleaned_data["before"]:
        events = events.filter(seq__lt=form.cleaned_data["before"])
    page = list(events[: AUDIT_PAGE_SIZE + 1])
    params = request.GET.copy()
    params.pop("before", None)
    params.pop("verify", None)
    params.pop("format", None)
    return render(
        request,
        "web/audit.html",
        {
            "form": form,
            "events": page[:AUDIT_PAGE_SIZE],
            "next_before": page[AUDIT_PAGE_SIZE - 1].seq if len(page) > AUDIT_PAGE_SIZE else None,
            "params": params.urlencode(),
            "verdict": audit_chain_verify() if request.GET.get("verify") else None,
            "help": "audit",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    error = ""
    if request.method == "POST":
        ids = request.POST.getlist("ids")
        try:
            if not all(is_digits(i) and len(i) <= 18 for i in ids):
                raise ValueError(ids)
            notification_mark_read(
                actor=user,
                notification_ids=None if request.POST.get("all") else [int(i) for i in ids],
            )
            return redirect("web:notifications")
        except ValueError:
            error = gettext("The notification id is not a number.")
        except DomainError as exc:
            error = refusal_text(exc)
    return render(
        request,
        "web/notifications.html",
        {"items": inbox_for(user)[:100], "error": error, "help": "notifications"},
        status=400 if error else 200,
    )
