"""What every page of the workbench shares: the signed-in user, refusals in plain words (next to
the field they name, or as the refused page), page sizes, and the login page. The pages
themselves are in the views_* modules, one per area."""

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language, gettext

from closeout.access.permissions import Perm
from closeout.core.errors import DomainError, PermissionDenied
from closeout.web.forms import ThrottledLoginForm

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
        label = str(Perm(code).label) if code in Perm.values else code
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


# One answer for a missing page and for one outside the viewer's scope.
NOT_FOUND = "No such page."


def _english() -> bool:
    return (get_language() or "").startswith("en")
