"""The approval inbox and the request page (decide, withdraw, resubmit)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from closeout.approvals.decide import (
    close_request_approve,
    close_request_reject,
    close_request_withdraw,
    close_requests_decide_batch,
)
from closeout.approvals.models import CloseRequest, RequestAction, RequestState
from closeout.approvals.selectors import (
    approvers_for,
    request_get_visible,
    requests_of,
    requests_waiting_for,
)
from closeout.closing.selectors import (
    close_checklist_for,
)
from closeout.core.errors import DomainError
from closeout.web import feedback
from closeout.web.forms import (
    DecideForm,
)
from closeout.web.views import NOT_FOUND, _attach, _english, _user


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
    if req.action != RequestAction.CLOSE or req.state != RequestState.PENDING:
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
