"""Refuses a request whose path, query string or form data holds a NUL character, before any
view reads it: PostgreSQL refuses such text with an error, never an answer. The API answers
422 `{code, message, details}` naming the parameter; a page answers 400 with the message.
(NUL characters inside JSON bodies are refused by the API's schemas, `api.schemas.In`.)"""

from collections.abc import Callable

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext

from closeout.core.errors import InvalidInput
from closeout.core.inputs import NUL, NUL_MESSAGE

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
            return _json(InvalidInput(f"{field} {NUL_MESSAGE}", details={"field": field}))
        message = gettext(
            "The input “%(field)s” holds an invisible NUL character (\\u0000). "
            "Remove it and try again."
        ) % {"field": field}
        # The workbench's page for refusals (a template name, not an import of the web app).
        return render(request, "web/refused.html", {"message": message}, status=400)
