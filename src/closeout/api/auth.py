"""Who is calling: bearer tokens (ERP integrations, scripts) or the browser session (with CSRF);
and the gate every API request passes first: body size, rate limits (per token, per signed-in
user, and invalid tokens per address, counted in core.counters so every server process shares
them), and the replay of `Idempotency-Key` retries."""

import functools
import math
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie

from closeout.api.errors import error_response
from closeout.api.models import ApiToken
from closeout.api.services import api_token_authenticate, idempotency_begin, idempotency_finish
from closeout.core.counters import counter_hit, counter_key, counter_value
from closeout.core.errors import DomainError
from closeout.core.inputs import is_digits

View = Callable[..., HttpResponse]

DEFAULT_MAX_BODY_BYTES = int(os.environ.get("CLOSEOUT_API_MAX_BODY_BYTES", 32 * 1024 * 1024))
DEFAULT_RATE_PER_MINUTE = 6000
DEFAULT_SESSION_RATE_PER_MINUTE = 1200
DEFAULT_INVALID_TOKEN_RATE_PER_MINUTE = 30
RATE_WINDOW_SECONDS = 60
_TOKEN_ATTR = "closeout_api_token"  # noqa: S105 (an attribute name, not a secret)


def max_body_bytes() -> int:
    return int(getattr(settings, "CLOSEOUT_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def rate_per_minute() -> int:
    return int(getattr(settings, "CLOSEOUT_API_RATE_PER_MINUTE", DEFAULT_RATE_PER_MINUTE))


def session_rate_per_minute() -> int:
    return int(
        getattr(settings, "CLOSEOUT_API_SESSION_RATE_PER_MINUTE", DEFAULT_SESSION_RATE_PER_MINUTE)
    )


def invalid_token_rate_per_minute() -> int:
    return int(
        getattr(
            settings,
            "CLOSEOUT_API_INVALID_TOKEN_RATE_PER_MINUTE",
            DEFAULT_INVALID_TOKEN_RATE_PER_MINUTE,
        )
    )


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "-"))


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`; a wrong, revoked or expired token is a 401 at once
    (it never falls through to the session)."""

    def __call__(self, request: HttpRequest) -> Any:
        if _bearer(request) is None:
            return None
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        found: ApiToken | None = getattr(request, _TOKEN_ATTR, None)
        if found is None:
            found = api_token_authenticate(token)
        if found is None:
            raise AuthenticationError(
                message="the API token is unknown, revoked or expired; create a new one"
            )
        request.user = found.user
        return found.user


class SessionAuth(APIKeyCookie):
    """The pages' own calls: the logged-in session, with Django's CSRF check on writes."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> AbstractBaseUser | None:
        return request.user if request.user.is_authenticated else None


def _clock() -> float:
    return time.time()


class _Window:
    """The current one-minute window (aligned to the clock, the same in every process)."""

    def __init__(self) -> None:
        self.now = _clock()
        self.index = int(self.now // RATE_WINDOW_SECONDS)

    def key(self, kind: str, ident: str) -> str:
        return f"{counter_key(kind, ident)}:{self.index}"

    def retry_after(self) -> int:
        return max(1, math.ceil((self.index + 1) * RATE_WINDOW_SECONDS - self.now))


def _too_many(window: _Window, limit: int, scope: str, what: str) -> HttpResponse:
    retry = window.retry_after()
    response = error_response(
        429,
        "rate_limited",
        f"more than {limit} {what} a minute; retry in {retry} s",
        {"limit": limit, "retry_after": retry, "scope": scope},
    )
    response["Retry-After"] = str(retry)
    return response


def _rate_limited(kind: str, ident: str, limit: int, what: str) -> HttpResponse | None:
    """Count this call in its window; a response when it is over the limit."""
    window = _Window()
    count = counter_hit(window.key(f"api-rate:{kind}", ident), RATE_WINDOW_SECONDS + 5)
    if count <= limit:
        return None
    return _too_many(window, limit, kind, what)


def _invalid_token_gate(request: HttpRequest, *, failed: bool) -> HttpResponse | None:
    """Invalid bearer tokens per address: once over the limit every bearer call from that
    address is refused before its token is looked at (no oracle for guessing)."""
    limit = invalid_token_rate_per_minute()
    window = _Window()
    key = window.key("api-rate:invalid-token", client_address(request))
    if failed:
        if counter_hit(key, RATE_WINDOW_SECONDS + 5) <= limit:
            return None
    elif counter_value(key) < limit:
        return None
    return _too_many(window, limit, "invalid_token", "invalid API tokens from this address")


def _caller(request: HttpRequest) -> tuple[int | None, HttpResponse | None]:
    """The user id behind the request, or an early response (too many calls; a bad token
    under its limit is left to the auth, which answers 401)."""
    raw = _bearer(request)
    if raw is not None:
        blocked = _invalid_token_gate(request, failed=False)
        if blocked is not None:
            return None, blocked
        token = api_token_authenticate(raw)
        if token is None:
            return None, _invalid_token_gate(request, failed=True)
        setattr(request, _TOKEN_ATTR, token)
        return token.user_id, _rate_limited(
            "token", token.key_hash, rate_per_minute(), "requests with this token"
        )
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return int(user.pk), _rate_limited(
            "session", str(user.pk), session_rate_per_minute(), "API requests by this user"
        )
    return None, None


def gate(view: View) -> View:
    """Wraps each API view (see api.py)."""

    @functools.wraps(view)  # keeps csrf_exempt: the session auth does its own CSRF check
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        length = request.META.get("CONTENT_LENGTH") or "0"
        limit = max_body_bytes()
        if not is_digits(length) or int(length) > limit:
            return error_response(
                413,
                "payload_too_large",
                f"request body of {length} bytes is over the limit of {limit} bytes; "
                "send fewer items per call",
                {"limit": limit},
            )
        if request.method in ("POST", "PUT", "PATCH") and int(length):
            # Read within our own limit (above), so Django's smaller form-upload limit
            # (DATA_UPLOAD_MAX_MEMORY_SIZE) does not refuse a 10,000-event JSON batch.
            request._body = request.read()
        user_id, early = _caller(request)
        if early is not None:
            return early
        key = request.headers.get("Idempotency-Key")
        if key is None or request.method != "POST" or user_id is None:
            return view(request, *args, **kwargs)
        try:
            record = idempotency_begin(
                user_id=user_id,
                key=key,
                method=request.method,
                path=request.get_full_path(),
                body=request.body,
            )
        except DomainError as exc:
            return error_response(exc.http_status, exc.code, exc.message, exc.details)
        if record.status:
            replay = HttpResponse(
                bytes(record.body), status=record.status, content_type=record.content_type
            )
            replay["Idempotent-Replay"] = "true"
            return replay
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            idempotency_finish(record=record, status=500, content_type="", body=b"")
            raise
        if response.status_code in (401, 429) or getattr(response, "streaming", False):
            idempotency_finish(record=record, status=500, content_type="", body=b"")
        else:
            idempotency_finish(
                record=record,
                status=response.status_code,
                content_type=response.get("Content-Type", "application/json"),
                body=response.content,
            )
        return response

    return gated
