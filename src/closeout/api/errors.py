"""Every error the API returns is JSON {"code", "message", "details"} with the right status."""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from closeout.core.busy import busy_json_response, database_busy
from closeout.core.errors import DomainError
from closeout.core.inputs import place

log = logging.getLogger(__name__)

# Parameter names ninja puts in front of a body field's location; users never see them.
_LOC_NOISE = {"body", "payload", "query", "path", "header", "data", "params", "filters"}


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    http_status = 413


class RateLimited(DomainError):
    code = "rate_limited"
    http_status = 429


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JsonResponse:
    return JsonResponse(
        {"code": code, "message": message, "details": details or {}},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )


def field_path(loc: list[Any] | tuple[Any, ...]) -> tuple[str, int | None]:
    """("body", "payload", "events", 3, "quantity") -> ("events[3].quantity", 3)."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "file":  # a multipart upload: ("file", "<field>")
        parts.pop(0)
    while parts and isinstance(parts[0], str) and parts[0] in _LOC_NOISE:
        parts.pop(0)
    index = next((part for part in parts if isinstance(part, int)), None)
    return place(parts) or "body", index


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for error in errors:
        field, index = field_path(error.get("loc", ()))
        item: dict[str, Any] = {"field": field, "message": str(error.get("msg", "invalid"))}
        if index is not None:
            item["index"] = index
        result.append(item)
    return result


def install_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(DomainError)
    def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        response = error_response(exc.http_status, exc.code, exc.message, exc.details)
        if isinstance(exc, RateLimited) and "retry_after" in exc.details:
            response["Retry-After"] = str(exc.details["retry_after"])
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = validation_details(list(exc.errors))
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return error_response(
            422,
            "invalid_input",
            f"{first['field']}: {first['message']}",
            {"field": first["field"], "errors": errors},
        )

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = error_response(
            401,
            "unauthenticated",
            exc.message
            if exc.message != "Unauthorized"
            else "authentication required: send 'Authorization: Bearer <token>' or log in",
        )
        response["WWW-Authenticate"] = 'Bearer realm="closeout"'
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400:
            # ninja's only 400 is a body that is not JSON: bad input like any other.
            return error_response(422, "invalid_input", f"body: {exc.message}", {"field": "body"})
        code = {403: "permission_denied", 404: "not_found", 429: "rate_limited"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, exc.message)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response(404, "not_found", str(exc) or "not found")

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return error_response(413, "payload_too_large", "request body too large")

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        busy = database_busy(exc)
        if busy is not None:
            log.warning("database busy on %s %s: %s", request.method, request.path, exc)
            return busy_json_response(busy)
        log.exception("API error on %s %s", request.method, request.path)
        return error_response(
            500, "server_error", "internal error; it was logged", {"type": type(exc).__name__}
        )
