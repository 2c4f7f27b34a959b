"""The shared parts of the configuration pages (设置): the guard of a page, the page itself, a
service call whose refusal goes above the form, and the redirect after a saved change."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from closeout.access.permissions import Perm
from closeout.core.errors import DomainError
from closeout.web.refusals import requires
from closeout.web.views import refusal_text


def config_view(perm: Perm) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Sign-in, then the permission at all (the service checks the scope of each change)."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        checked = requires(perm, what=gettext_lazy("configuration"))(view)
        return login_required(require_http_methods(["GET", "POST"])(checked))  # type: ignore[return-value]

    return wrap


def config_done(request: HttpRequest, text: str, to: str) -> HttpResponse:
    messages.success(request, text)
    return HttpResponseRedirect(to if to.startswith("/") else reverse(to))


def config_page(
    request: HttpRequest, template: str, context: dict[str, Any], *, refused: bool = False
) -> HttpResponse:
    return render(request, template, {"help": "", **context}, status=400 if refused else 200)


def config_try(form: forms.Form, action: Callable[[], Any]) -> bool:
    """Run a service call; a refusal goes above the form (or next to the field it names)."""
    try:
        action()
    except DomainError as exc:
        field = str(exc.details.get("field", ""))
        form.add_error(field if field in form.fields else None, refusal_text(exc))
        return False
    return True


def int_param(text: str) -> int:
    """A whole number from a form field, or 0 (no row has id 0)."""
    return int(text) if text.isdigit() and len(text) < 18 else 0
