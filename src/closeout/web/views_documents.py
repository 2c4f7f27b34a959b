"""The document page with its close and reopen forms."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.approvals.models import CloseRequest
from closeout.approvals.submit import close_request_submit, reopen_request_submit
from closeout.audit.models import AuditObject
from closeout.audit.selectors import audit_events_for
from closeout.closing.close_preview import close_preview_for
from closeout.closing.dimensions import dimensions_of, lines_with_dimensions
from closeout.closing.selectors import (
    close_checklist_for,
    close_checklist_with_risks,
)
from closeout.closing.services import document_close, document_reopen
from closeout.core.errors import DomainError, InvalidTransition
from closeout.documents.models import CloseState, Document
from closeout.web import feedback
from closeout.web.forms import (
    CloseForm,
    ReopenForm,
)
from closeout.web.present import close_facts, close_plan
from closeout.web.views import NOT_FOUND, _attach, _english, _user, refusal_text


def _document_for(request: HttpRequest, pk: int) -> Document:
    """The document, when the user may view it; a 404 like a missing one otherwise."""
    document = Document.objects.select_related("org_unit", "partner").filter(pk=pk).first()
    if document is None or not _may(_user(request), Perm.DOCUMENT_VIEW, document):
        raise Http404(NOT_FOUND)
    return document


def _may(user: AbstractBaseUser, perm: str, document: Document) -> bool:
    """Whether to offer an action; the service checks again when it is taken."""
    return user_has_perm(user, perm, org_unit=document.org_unit, doc_type=document.doc_type)


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
    """The close form of a document: on GET the form with its path (close now or request approval)
    and preview; on POST the preview again, a close, or a close request, with a message after it
    and the refusal in the page language. Long because the page offers those three buttons on
    one form."""
    document = _document_for(request, pk)
    user = _user(request)
    open_lines = list(
        document.lines.filter(close_state=CloseState.OPEN)
        .order_by("line_no")
        .values_list("line_no", flat=True)
    )
    form = CloseForm(
        request.POST or None,
        request.FILES or None,
        line_nos=open_lines,
        company_id=document.company_id,
    )
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
    form = ReopenForm(request.POST or None, company_id=document.company_id)
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
