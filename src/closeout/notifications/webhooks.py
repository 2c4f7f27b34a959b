"""The signed-webhook outbox: events written as pending deliveries in the caller's transaction,
POSTed after it commits (by a Celery worker when a broker is configured), retried with
exponential backoff, and recorded in the WebhookDelivery log.

A failure to deliver is recorded in the log and never breaks the business transaction, which
has committed by then. Endpoints are written in `notifications.webhook_endpoints`.
"""

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.core.errors import DomainError, NotFound
from closeout.notifications.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from closeout.notifications.payloads import jsonable
from closeout.notifications.webhook_urls import checked_connection, webhook_url_target

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_BACKOFF_BASE = timedelta(seconds=30)
WEBHOOK_BACKOFF_CAP = timedelta(hours=1)
WEBHOOK_MAX_ATTEMPTS = 8
WEBHOOK_SIGNATURE_VERSION = "v1"


def webhook_sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of f"{timestamp}.{body}" with the endpoint's secret."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature_verify(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    header: str | None,
    tolerance_seconds: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: True when `header` (X-Closeout-Signature, "v1=<hex>", several allowed
    comma-separated) signs this body and timestamp, and the timestamp is within the tolerance
    of `now` (default: the clock), which stops replays of old requests."""
    if not header:
        return False
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_seconds:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = webhook_sign(secret, stamp, raw)
    for part in header.split(","):
        version, _, signature = part.strip().partition("=")
        if version == WEBHOOK_SIGNATURE_VERSION and hmac.compare_digest(signature, expected):
            return True
    return False


def webhook_body(delivery: WebhookDelivery) -> bytes:
    """The exact bytes POSTed: UTF-8 JSON with sorted keys, the same on every attempt."""
    envelope = {
        "id": delivery.pk,
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    text = json.dumps(envelope, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode()


def webhook_backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed attempt: 30 s, 60 s, 120 s, … at most one hour."""
    seconds = WEBHOOK_BACKOFF_BASE.total_seconds() * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), WEBHOOK_BACKOFF_CAP)


def webhook_emit(
    *, event: str, payload: dict[str, Any], company_id: int | None = None
) -> list[WebhookDelivery]:
    """Outbox: one pending delivery per active endpoint subscribed to `event` (the group's
    endpoints and those of the company `company_id` the event is about), written in the
    caller's transaction and attempted after it commits."""
    if not isinstance(event, str) or not event.strip():
        raise ValueError("webhook event must be a non-empty string such as 'request.approved'")
    if not isinstance(payload, Mapping):
        raise ValueError(f"webhook payload must be a dict, not {type(payload).__name__}")
    data = jsonable(payload, strict=True, where="payload")
    scope = models.Q(company__isnull=True)
    if company_id is not None:
        scope |= models.Q(company_id=company_id)
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(scope, active=True) if e.subscribes_to(event)
    ]
    if not endpoints:
        return []
    now = timezone.now()
    deliveries: list[WebhookDelivery] = []
    with transaction.atomic():
        for endpoint in endpoints:
            delivery = WebhookDelivery.objects.create(
                endpoint=endpoint, event=event, payload=data, next_attempt_at=now, created_at=now
            )
            deliveries.append(delivery)
            transaction.on_commit(partial(_deliver_after_commit, delivery.pk), robust=True)
    return deliveries


def _deliver_after_commit(delivery_id: int) -> None:
    if getattr(settings, "CELERY_BROKER_URL", ""):
        _enqueue_delivery(delivery_id)
    else:
        webhook_deliver(delivery_id)


def _enqueue_delivery(delivery_id: int) -> None:
    """With a broker configured, a delivery goes to a Celery worker (this runs after commit)."""
    from closeout.celery import app

    app.send_task("closeout.webhook_deliver", args=(delivery_id,))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect answer is not a delivery: report it as the 3xx status it is."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _CheckedHTTPConnection(http.client.HTTPConnection):
    """Connects only to addresses of the host that webhook_urls allows (checked at connect
    time, after resolution, so a changed DNS answer is checked too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = checked_connection


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = checked_connection


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPConnection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


# No proxy from the environment: the address check must apply to the receiver itself.
_opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _CheckedHTTPHandler, _CheckedHTTPSHandler, _NoRedirect
)


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One POST; (HTTP status or None, error text or "")."""
    endpoint = delivery.endpoint
    try:
        webhook_url_target(endpoint.url)
    except DomainError as exc:
        return None, exc.message
    body = webhook_body(delivery)
    stamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 — scheme checked above
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "closeout-webhooks/1",
            "X-Closeout-Event": delivery.event,
            "X-Closeout-Delivery": str(delivery.pk),
            "X-Closeout-Timestamp": str(stamp),
            "X-Closeout-Signature": (
                f"{WEBHOOK_SIGNATURE_VERSION}={webhook_sign(endpoint.secret, stamp, body)}"
            ),
        },
    )
    timeout = float(getattr(settings, "CLOSEOUT_WEBHOOK_TIMEOUT_SECONDS", WEBHOOK_TIMEOUT_SECONDS))
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = int(response.status)
            response.read(4096)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip() if exc.fp else ""
        exc.close()
        return exc.code, f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
    except urllib.error.URLError as exc:
        return None, f"{type(exc.reason).__name__}: {exc.reason}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if 200 <= status < 300:
        return status, ""
    return status, f"HTTP {status}"


def _attempt(
    delivery_id: int, now: datetime | None, *, force: bool = False
) -> tuple[WebhookDelivery, bool]:
    moment = now or timezone.now()
    try:
        delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    except WebhookDelivery.DoesNotExist:
        raise NotFound(
            gettext_noop("webhook delivery %(delivery_id)s does not exist"),
            params={"delivery_id": delivery_id},
        ) from None
    if delivery.status != DeliveryStatus.PENDING:
        return delivery, False
    due = delivery.next_attempt_at is None or delivery.next_attempt_at <= moment
    if not (due or force):
        return delivery, False
    attempt = delivery.attempts + 1
    retry_at = moment + webhook_backoff(attempt)
    # Claim the attempt by compare-and-set on `attempts`: a second worker (or a second call)
    # racing for the same row updates nothing and sends nothing. No row lock is held while
    # the POST runs, so a slow receiver never blocks writers.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
    ).update(attempts=attempt, next_attempt_at=retry_at, last_attempt_at=moment)
    if not claimed:
        delivery.refresh_from_db()
        return delivery, False
    delivery.attempts, delivery.next_attempt_at, delivery.last_attempt_at = (
        attempt,
        retry_at,
        moment,
    )
    if not delivery.endpoint.active:
        status_code, error = None, f"endpoint {delivery.endpoint.name!r} is not active"
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        status_code, error = _post(delivery)
        if not error:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = moment
            delivery.next_attempt_at = None
        elif attempt >= WEBHOOK_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
    if error:
        logger.info("webhook delivery %s attempt %d failed: %s", delivery.pk, attempt, error)
    delivery.last_status_code = status_code
    delivery.last_error = error[:2000]
    delivery.save(
        update_fields=[
            "status",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
        ]
    )
    return delivery, True


def webhook_deliver(
    delivery_id: int, *, now: datetime | None = None, force: bool = False
) -> WebhookDelivery:
    """One attempt at a pending delivery that is due (`next_attempt_at` ≤ now, or any time with
    `force`, e.g. "retry now" in the admin). Re-reads the row; a delivered or failed row, or
    one another worker is attempting, is left alone, so running it twice never sends twice.
    A 2xx answer marks it delivered; anything else records the error and schedules the next
    attempt with exponential backoff, or marks it failed after WEBHOOK_MAX_ATTEMPTS. A row
    whose endpoint was deactivated is marked failed without sending."""
    delivery, _attempted = _attempt(delivery_id, now, force=force)
    return delivery


def webhook_deliver_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Periodic: attempt every pending delivery whose next attempt has come; returns how many
    were attempted."""
    moment = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=moment)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    attempted = 0
    for delivery_id in due:
        _delivery, did = _attempt(delivery_id, moment)
        attempted += did
    return attempted
