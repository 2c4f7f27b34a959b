"""Hold and release (冻结 / 解冻) in the workbench: a document or chosen lines, with a reason.
The page is thin: `closing.services.document_hold` / `document_release` check the permission,
the state machine and write the audit event."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from closeout.access.permissions import Perm
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.closing.services import document_hold, document_release
from closeout.core.errors import DomainError, PermissionDenied
from closeout.documents.models import CloseState, Document, EventStatus
from closeout.web.views import _attach, _refused, _user
from closeout.web.views_documents import _document_for, _may

REMARK_MAX = 2000


class HoldForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=REMARK_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": REMARK_MAX}),
        error_messages={"required": _("A hold needs a reason.")},
    )
    lines = forms.TypedMultipleChoiceField(
        label=_("Lines"),
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: the whole document."),
    )

    def __init__(self, *args: Any, line_nos: list[int], reason_required: bool, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fields["reason"].required = reason_required
        lines = self.fields["lines"]
        assert isinstance(lines, forms.ChoiceField)  # noqa: S101 (narrows the type)
        lines.choices = [(n, str(n)) for n in line_nos]

    def chosen(self) -> list[int] | None:
        chosen = sorted(set(self.cleaned_data.get("lines") or []))
        return chosen or None


@dataclass(frozen=True)
class HoldInfo:
    """Why a document (or some of its lines) is held, by whom and since when."""

    reason: str
    by: str
    since: datetime | None
    lines: list[tuple[int, str]]
    quarantined: int


HELD_ACTIONS = (AuditAction.DOCUMENT_HELD, AuditAction.LINES_HELD)


def hold_info(document: Document) -> HoldInfo | None:
    held_lines = list(
        document.lines.filter(close_state=CloseState.ON_HOLD)
        .order_by("line_no")
        .values_list("line_no", "hold_reason")
    )
    if document.close_state != CloseState.ON_HOLD and not held_lines:
        return None
    last = (
        AuditEvent.objects.filter(
            object_type=AuditObject.DOCUMENT, object_id=str(document.pk), action__in=HELD_ACTIONS
        )
        .order_by("-seq")
        .first()
    )
    return HoldInfo(
        reason=document.hold_reason or (last.reason if last else ""),
        by=last.actor_name if last else "",
        since=last.at if last else document.state_changed_at,
        lines=held_lines,
        quarantined=document.events.filter(status=EventStatus.QUARANTINED).count(),
    )


def hold_context(document: Document, user: Any) -> dict[str, Any]:
    """What the document page shows and offers about holds."""
    may_hold = _may(user, Perm.HOLD, document)
    info = hold_info(document)
    return {
        "hold": info,
        "can_hold": may_hold and document.close_state == CloseState.OPEN,
        "can_release": may_hold and info is not None,
    }


def _lines_in(document: Document, state: str) -> list[int]:
    return list(
        document.lines.filter(close_state=state)
        .order_by("line_no")
        .values_list("line_no", flat=True)
    )


@login_required
@require_http_methods(["GET", "POST"])
def document_hold_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _hold_or_release(request, pk, release=False)


@login_required
@require_http_methods(["GET", "POST"])
def document_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _hold_or_release(request, pk, release=True)


def _hold_or_release(request: HttpRequest, pk: int, *, release: bool) -> HttpResponse:
    document = _document_for(request, pk)
    user = _user(request)
    whole_held = document.close_state == CloseState.ON_HOLD
    line_nos = (
        []
        if release and whole_held
        else _lines_in(document, CloseState.ON_HOLD if release else CloseState.OPEN)
    )
    form = HoldForm(
        request.POST if request.method == "POST" else None,
        line_nos=line_nos,
        reason_required=not release,
    )
    if request.method == "POST" and form.is_valid():
        reason, chosen = form.cleaned_data["reason"], form.chosen()
        try:
            if release:
                # Released lines: those chosen, else every held line (a held header: the whole).
                lines = None if whole_held else (chosen or line_nos)
                document_release(actor=user, document=document, reason=reason, line_nos=lines)
                messages.success(request, gettext("Released. Quarantined events were applied."))
            else:
                document_hold(actor=user, document=document, reason=reason, line_nos=chosen)
                messages.success(request, gettext("Held: nothing closes until it is released."))
            return redirect("web:document", pk=document.pk)
        except PermissionDenied as exc:
            return _refused(request, exc)
        except DomainError as exc:
            _attach(form, exc)
    return render(
        request,
        "web/hold.html",
        {
            "document": document,
            "form": form,
            "release": release,
            "hold": hold_info(document),
            "help": "document",
        },
        status=400 if form.is_bound and form.errors else 200,
    )
