"""HTTP middleware of every request: its id, its log line and metrics; no caching of pages; and
the refusal of NUL characters in the path, query string or form data (PostgreSQL refuses such
text with an error, never an answer: the API answers 422 naming the parameter, a page 400;
NUL characters inside JSON bodies are refused by the API's schemas, `api.schemas.In`)."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext

from closeout.core.errors import InvalidInput
from closeout.core.fields import field_words
from closeout.core.inputs import NUL, nul_error
from closeout.core.metrics import observe_request
from closeout.core.request_id import current_request_id

logger = logging.getLogger("closeout.request")

# An X-Request-ID from a proxy or client is kept only when it is short and plain, so it can
# go into logs and audit events as it is; anything else gets a new id.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REQUEST_ID_HEADER = "X-Request-ID"

Handler = Callable[[HttpRequest], HttpResponseBase]


def request_id_from(header: str | None) -> str:
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _view_label(request: HttpRequest) -> str:
    """The URL name of the view (bounded, unlike paths), for metrics."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return str(match.view_name or match._func_path)
    return "<static>" if request.path.startswith("/static/") else "<unresolved>"


def _user_label(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    return user.get_username() if user is not None and user.is_authenticated else ""


class RequestMiddleware:
    """First of all middleware: gives the request its id (the sane `X-Request-ID` it came with,
    or a new one) in `current_request_id` for logs and audit events and in the response
    header; after the response, one log line and the request metrics."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            status = response.status_code
            observe_request(_view_label(request), request.method or "", status, duration)
            logger.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "%s %s %s",
                request.method,
                request.path,
                status,
                extra={
                    "request_id": request_id,
                    "user": _user_label(request),
                    "path": request.path,
                    "method": request.method,
                    "status": status,
                    "duration": round(duration, 4),
                },
            )
            return response
        finally:
            current_request_id.reset(token)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every page and API response (they show or carry data of a
    signed-in user); static files, served before this, keep their long caching."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        patch_cache_control(response, no_store=True)
        return response


API_PREFIX = "/api/"
# Form data is read here only for the pages: the API reads its bodies itself, within its own
# size limit.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def nul_parameter(request: HttpRequest) -> str | None:
    """The name of the first part of the request that holds a NUL character, or None."""
    if NUL in request.path:
        return "path"
    sources = [request.GET]
    if (
        request.method == "POST"
        and not request.path.startswith(API_PREFIX)
        and request.content_type in FORM_TYPES
    ):
        sources.append(request.POST)
    for source in sources:
        for key, values in source.lists():
            if NUL in key:
                return key.replace(NUL, "\\u0000")
            if any(isinstance(v, str) and NUL in v for v in values):
                return key
    return None


def _json(error: InvalidInput) -> JsonResponse:
    return JsonResponse(error.as_dict(), status=422, json_dumps_params={"ensure_ascii": False})


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path.startswith(API_PREFIX)
        try:
            field = nul_parameter(request)
        except SuspiciousOperation as exc:  # more parameters than Django parses
            if not api:
                raise  # Django's own 400 page
            error = InvalidInput(str(exc), details={"field": "query"})
            return _json(error)
        if field is None:
            return self.get_response(request)
        if api:
            return _json(nul_error(field))
        message = gettext(
            "The input “%(field)s” holds an invisible NUL character (\\u0000). "
            "Remove it and try again."
        ) % {"field": field_words(field)}
        # The workbench's page for refusals (a template name, not an import of the web app).
        return render(request, "web/refused.html", {"message": message}, status=400)
