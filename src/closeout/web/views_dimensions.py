"""Close and reopen one close dimension (关闭维度) of chosen lines in the workbench: e.g. close a
purchase order line for receiving (收货关闭) with a reason, and reopen it. The page is thin:
`closing.dimension_services` checks the permission, the states and writes the audit event."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from closeout.access.permissions import Perm
from closeout.closing.dimension_services import line_dimension_close, line_dimension_reopen
from closeout.closing.dimensions import closed_dimensions, dimensions_of
from closeout.closing.models import ReasonAction
from closeout.core.errors import DomainError, PermissionDenied
from closeout.documents.models import CloseState, Document, Line
from closeout.web.forms import ReasonField, remark_field
from closeout.web.views import _attach, _refused, _user
from closeout.web.views_documents import _document_for, _may

# What each page needs: the permission, the reason list, and the lines it may take.
PERMS = {"close": Perm.CLOSE_DIRECT, "reopen": Perm.REOPEN_APPROVE}


class DimensionForm(forms.Form):
    dimension = forms.ChoiceField(
        label=_("Close dimension"), error_messages={"required": _("Choose a close dimension.")}
    )
    lines = forms.TypedMultipleChoiceField(
        label=_("Lines"),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one line.")},
    )
    reason = ReasonField(label=_("Reason"), required_message=_("Choose a reason."))
    remark = remark_field(_("Remark"))

    def __init__(
        self, *args: Any, document: Document, line_nos: list[int], reopen: bool, **kw: Any
    ):
        super().__init__(*args, **kw)
        dimension = self.fields["dimension"]
        assert isinstance(dimension, forms.ChoiceField)  # noqa: S101 (narrows the type)
        dimension.choices = [("", gettext("Choose…"))] + [
            (d.code, str(d.label)) for d in dimensions_of(document.doc_type)
        ]
        lines = self.fields["lines"]
        assert isinstance(lines, forms.ChoiceField)  # noqa: S101
        lines.choices = [(n, str(n)) for n in line_nos]
        reason = self.fields["reason"]
        assert isinstance(reason, ReasonField)  # noqa: S101
        reason.set_reasons(
            ReasonAction.REOPEN if reopen else ReasonAction.CLOSE, document.company_id
        )


def dimension_context(document: Document, user: Any) -> dict[str, Any]:
    """What the document page offers about close dimensions (the services decide again)."""
    if not dimensions_of(document.doc_type) or document.close_state != CloseState.OPEN:
        return {"can_close_dimension": False, "can_reopen_dimension": False}
    return {
        "can_close_dimension": _may(user, Perm.CLOSE_DIRECT, document)
        and bool(_lines_for(document, reopen=False)),
        "can_reopen_dimension": _may(user, Perm.REOPEN_APPROVE, document)
        and bool(_lines_for(document, reopen=True)),
    }


def _lines_for(document: Document, *, reopen: bool) -> list[int]:
    """Close: the open lines with a dimension still open. Reopen: the lines closed in some
    dimension, or closed as a whole (they reopen with their other dimensions closed)."""
    lines = list(document.lines.order_by("line_no").values_list("pk", "line_no", "close_state"))
    closed = closed_dimensions([pk for pk, _, _ in lines])
    count = len(dimensions_of(document.doc_type))
    if reopen:
        return [n for pk, n, state in lines if state == CloseState.CLOSED or closed.get(pk)]
    return [
        n
        for pk, n, state in lines
        if state == CloseState.OPEN and len(closed.get(pk, set())) < count
    ]


@login_required
@require_http_methods(["GET", "POST"])
def dimension_close_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _dimension_page(request, pk, reopen=False)


@login_required
@require_http_methods(["GET", "POST"])
def dimension_reopen_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _dimension_page(request, pk, reopen=True)


def _dimension_page(request: HttpRequest, pk: int, *, reopen: bool) -> HttpResponse:
    document = _document_for(request, pk)
    if not dimensions_of(document.doc_type):
        raise Http404("No such page.")
    user = _user(request)
    if not _may(user, PERMS["reopen" if reopen else "close"], document):
        return _refused(
            request,
            PermissionDenied(
                gettext_noop("%(user)s lacks '%(perm)s' for %(document)s"),
                params={
                    "user": user.get_username(),
                    "perm": str(PERMS["reopen" if reopen else "close"]),
                    "document": document.in_words,
                },
                details={"permission": PERMS["reopen" if reopen else "close"]},
            ),
        )
    line_nos = _lines_for(document, reopen=reopen)
    form = DimensionForm(
        request.POST if request.method == "POST" else None,
        document=document,
        line_nos=line_nos,
        reopen=reopen,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        step = line_dimension_reopen if reopen else line_dimension_close
        try:
            result = step(
                actor=user,
                document=document,
                dimension=data["dimension"],
                reason_code=data["reason"],
                remark=data["remark"],
                line_nos=sorted(data["lines"]),
            )
        except PermissionDenied as exc:
            return _refused(request, exc)
        except DomainError as exc:
            _attach(form, exc)
        else:
            messages.success(request, _done(result.document, result.dimension, result, reopen))
            return redirect("web:document", pk=document.pk)
    return render(
        request,
        "web/dimension.html",
        {
            "document": document,
            "form": form,
            "reopen": reopen,
            "lines": _line_rows(document, line_nos),
            "help": "document",
        },
        status=400 if form.is_bound and form.errors else 200,
    )


def _line_rows(document: Document, line_nos: list[int]) -> list[Line]:
    return list(
        document.lines.filter(line_no__in=line_nos).select_related("item").order_by("line_no")
    )


def _done(document: Document, code: str, result: Any, reopen: bool) -> str:
    """The success message: which lines, which dimension, what the commitments gained or lost."""
    label = next(str(d.label) for d in dimensions_of(document.doc_type) if d.code == code)
    params = {
        "document": document.number,
        "lines": ", ".join(map(str, result.lines)),
        "dimension": label,
        "qty": f"{result.released_qty.normalize():f}",
    }
    if reopen:
        return (
            gettext(
                "%(document)s line(s) %(lines)s reopened for %(dimension)s; quantity %(qty)s is "
                "on order again."
            )
            % params
        )
    return (
        gettext(
            "%(document)s line(s) %(lines)s closed for %(dimension)s; quantity %(qty)s released "
            "from on order."
        )
        % params
    )
