"""One way a page refuses. A view raises the DomainError it does not show next to a field, and
`RefusalMiddleware` answers with the refused page: 403 for a missing permission, the error's
own status otherwise, in the page language; a database busy past its lock wait answers 503
(core.busy). `requires` is the permission check at the top of a
view. The REST API (/api/) answers its errors itself, as JSON."""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django_stubs_ext import StrOrPromise

from closeout.access.services import require
from closeout.core.busy import RETRY_AFTER_SECONDS, busy_json_response, database_busy
from closeout.core.errors import DomainError
from closeout.web.views import _refused, _user

View = Callable[..., HttpResponseBase]

log = logging.getLogger(__name__)


class RefusalMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        api = request.path.startswith("/api/")
        if isinstance(exception, DomainError) and not api:
            return _refused(request, exception)
        busy = database_busy(exception)
        if busy is None:
            return None
        log.warning("database busy on %s %s: %s", request.method, request.path, exception)
        if api:  # before the API's own handlers: its token check
            return busy_json_response(busy)
        response = _refused(request, busy)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def requires(perm: str, *, what: StrOrPromise) -> Callable[[View], View]:
    """The signed-in user must hold `perm` somewhere (each service checks the unit and type
    again when it acts); otherwise the refused page names the missing permission."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            require(_user(request), perm, what=str(what))
            return view(request, *args, **kwargs)

        return checked

    return decorate
