"""The audit log page (with its exports) and the notifications page."""

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language, gettext, gettext_noop, pgettext
from django.views.decorators.http import require_GET, require_http_methods

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.approvals.selectors import (
    audit_scope,
)
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.services import audit_chain_verify, audit_record
from closeout.core.errors import DomainError
from closeout.core.exports import check_format, export_response
from closeout.core.inputs import is_digits
from closeout.notifications.selectors import email_enabled_for, inbox_for, user_language
from closeout.notifications.services import notification_mark_read, preference_set
from closeout.web.forms import (
    AuditFilterForm,
    PreferenceForm,
)
from closeout.web.templatetags.closeout_labels import (
    object_repr_label,
    object_type_label,
    reason_label,
)
from closeout.web.templatetags.closeout_web import audit_label
from closeout.web.views import _user, refusal_text

AUDIT_PAGE_SIZE = 100


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
    english = (get_language() or "").startswith("en")
    return export_response(
        fmt,
        filename="audit-log",
        headers=[pgettext("audit export", h) for h in AUDIT_EXPORT_COLUMNS],
        rows=(_audit_export_row(e, english) for e in events),
        sheet_title=pgettext("audit export", "audit"),
    )


# The columns of the audit export, as the English export heads them (the Chinese one heads
# them in words; the data and hash columns stay machine data in both).
AUDIT_EXPORT_COLUMNS = (
    gettext_noop("seq"),
    gettext_noop("time"),
    gettext_noop("user"),
    gettext_noop("action"),
    gettext_noop("object_type"),
    gettext_noop("object_id"),
    gettext_noop("object"),
    gettext_noop("reason"),
    gettext_noop("request_id"),
    gettext_noop("http_request_id"),
    gettext_noop("data"),
    gettext_noop("hash"),
)


def _audit_export_row(e: AuditEvent, english: bool) -> list[Any]:
    """One event: its codes as stored in English (integrations read them), in words in
    Chinese (issue 17)."""
    if english:
        action: Any = AuditAction(e.action).label
        object_type, object_repr, reason = e.object_type, e.object_repr, e.reason
    else:
        action = audit_label(e.get_action_display())
        object_type = object_type_label(e.object_type)
        object_repr, reason = object_repr_label(e.object_repr), reason_label(e.reason)
    return [
        e.seq,
        e.at,
        e.actor_name,
        action,
        object_type,
        e.object_id,
        object_repr,
        reason,
        e.request_id,
        e.http_request_id,
        e.data,
        e.hash,
    ]


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
    settings_form = PreferenceForm(
        initial={"language": user_language(user), "email_enabled": email_enabled_for(user)}
    )
    if request.method == "POST" and request.POST.get("preferences"):
        settings_form = PreferenceForm(request.POST)
        if settings_form.is_valid():
            try:
                preference_set(
                    actor=user,
                    language=settings_form.cleaned_data["language"],
                    email_enabled=settings_form.cleaned_data["email_enabled"],
                )
                messages.success(request, gettext("Notification settings saved."))
                return redirect("web:notifications")
            except DomainError as exc:
                settings_form.add_error(None, refusal_text(exc))
        error = gettext("The notification settings were not saved.")
    elif request.method == "POST":
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
        {
            "items": inbox_for(user)[:100],
            "error": error,
            "help": "notifications",
            "settings_form": settings_form,
        },
        status=400 if error else 200,
    )
