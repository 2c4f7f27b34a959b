"""Writes for notifications: in-app messages, e-mail after commit, and the signed-webhook outbox.

Nothing leaves the process before the caller's transaction commits: e-mails and webhook POSTs
are started from `transaction.on_commit`, so a rollback sends nothing. A failure to send is
recorded (on the Notification, or in the WebhookDelivery log) and never breaks the business
transaction, which has committed by then.
"""

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import URLValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, require_company_wide, require_unit_wide
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from closeout.core.models import Company
from closeout.core.notice_kinds import NoticeKind
from closeout.notifications.catalog import EN, LANGUAGES, ZH, check_context, kind_for, render
from closeout.notifications.models import (
    LINK_MAX_LENGTH,
    DeliveryStatus,
    Notification,
    Preference,
    WebhookDelivery,
    WebhookEndpoint,
)
from closeout.notifications.webhook_urls import (
    checked_connection,
    webhook_url_check,
    webhook_url_target,
)

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_BACKOFF_BASE = timedelta(seconds=30)
WEBHOOK_BACKOFF_CAP = timedelta(hours=1)
WEBHOOK_MAX_ATTEMPTS = 8
WEBHOOK_SIGNATURE_VERSION = "v1"

_EMAIL_FOOTER = {
    ZH: "—— closeout 结案系统。可以在个人通知偏好中关闭邮件通知。",
    EN: "— closeout. You can turn these e-mails off in your notification preferences.",
}


# --- JSON ---------------------------------------------------------------------------------


def _jsonable(value: Any, *, strict: bool, where: str) -> Any:
    """Plain JSON data from a context or payload. Decimals, dates and UUIDs become strings and
    users their username. `strict` (webhooks) refuses floats and unknown types, since a payload
    that other systems read must not carry rounding errors or `repr()` text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return str(value)  # TextChoices members become plain strings
    if isinstance(value, float):
        if strict:
            raise ValueError(f"webhook payload has a float at {where}; pass a Decimal or a str")
        return value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {
            str(k): _jsonable(v, strict=strict, where=f"{where}[{k!r}]") for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v, strict=strict, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return [_jsonable(v, strict=strict, where=where) for v in sorted(value, key=str)]
    if isinstance(value, models.Model) and hasattr(value, "get_username"):
        return str(value.get_username())
    if strict:
        raise ValueError(
            f"webhook payload value at {where} is a {type(value).__name__}, not JSON data"
        )
    return str(value)


# --- preferences --------------------------------------------------------------------------


def _default_language() -> str:
    code = str(settings.LANGUAGE_CODE).lower()
    return code if code in LANGUAGES else ZH


def user_language(user: AbstractBaseUser) -> str:
    """'zh-hans' or 'en': the user's Preference, else the site language (zh-hans by default)."""
    language = Preference.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
    return language if language in LANGUAGES else _default_language()


def _require_user(actor: AbstractBaseUser | None, what: str) -> AbstractBaseUser:
    if actor is None or actor.pk is None or not actor.is_active:
        raise PermissionDenied(
            gettext_noop("%(what)s needs a signed-in, active user"), params={"what": what}
        )
    return actor


@transaction.atomic
@transaction.atomic
def preference_set(
    *,
    actor: AbstractBaseUser,
    language: str | None = None,
    email_enabled: bool | None = None,
) -> Preference:
    """Set the actor's own notification language and/or e-mail switch."""
    user = _require_user(actor, "setting notification preferences")
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(
            gettext_noop("notification language '%(language)s' is not supported; use %(choices)s"),
            params={"language": language, "choices": " or ".join(LANGUAGES)},
            details={"field": "language", "value": language},
        )
    preference, _created = Preference.objects.select_for_update(no_key=True).get_or_create(
        user_id=user.pk, defaults={"language": _default_language()}
    )
    if language is not None:
        preference.language = language
    if email_enabled is not None:
        preference.email_enabled = bool(email_enabled)
    preference.save()
    return preference


# --- in-app and e-mail --------------------------------------------------------------------


def _email_address(user: AbstractBaseUser) -> str:
    field_name = user.get_email_field_name()
    return str(getattr(user, field_name, "") or "").strip()


def notify(
    *,
    recipients: Iterable[AbstractBaseUser],
    kind: NoticeKind,
    context: dict[str, Any],
    link: str = "",
) -> list[Notification]:
    """One in-app Notification per recipient, in the recipient's language, and an e-mail to
    each recipient with an address and e-mail enabled, sent after the caller's transaction
    commits. Call it inside that transaction. Unknown kind or missing context → ValueError."""
    spec = kind_for(kind)
    check_context(spec, context)
    rendered = {lang: render(spec, context, lang) for lang in LANGUAGES}  # fails before writing
    if len(link) > LINK_MAX_LENGTH:
        raise ValueError(
            f"notification link is longer than {LINK_MAX_LENGTH} characters: {link[:60]}…"
        )
    users: dict[Any, AbstractBaseUser] = {}
    for user in recipients:
        if user.pk is None:
            raise ValueError("notification recipient must be a saved user")
        users.setdefault(user.pk, user)
    if not users:
        return []
    preferences = {p.user_id: p for p in Preference.objects.filter(user_id__in=list(users))}
    stored_context = _jsonable(context, strict=False, where="context")
    created_at = timezone.now()
    notifications: list[Notification] = []
    with transaction.atomic():
        for user_pk, user in users.items():
            preference = preferences.get(user_pk)
            language = preference.language if preference is not None else _default_language()
            if language not in LANGUAGES:
                language = _default_language()
            title, body = rendered[language]
            data: dict[str, Any] = {"context": stored_context, "language": language}
            email_on = preference.email_enabled if preference is not None else True
            address = _email_address(user)
            if email_on and address and user.is_active:
                data["email_to"] = address
            notifications.append(
                Notification.objects.create(
                    user_id=user_pk,
                    kind=spec.code,
                    title=title,
                    body=body,
                    link=link,
                    data=data,
                    created_at=created_at,
                )
            )
        to_mail = [n.pk for n in notifications if "email_to" in n.data]
        if to_mail:
            transaction.on_commit(partial(_send_emails, to_mail), robust=True)
    return notifications


def _absolute_link(link: str) -> str:
    base = str(getattr(settings, "CLOSEOUT_BASE_URL", "") or "").rstrip("/")
    return f"{base}{link}" if base and link.startswith("/") else link


def _email_body(notification: Notification) -> str:
    language = notification.data.get("language", ZH)
    parts = [notification.body]
    if notification.link:
        parts.append(_absolute_link(notification.link))
    parts.append(_EMAIL_FOOTER.get(language, _EMAIL_FOOTER[ZH]))
    return "\n\n".join(parts)


def _record_email(notification: Notification, *, error: str | None) -> None:
    if error is None:
        notification.data["email_sent_at"] = timezone.now().isoformat()
        notification.data.pop("email_error", None)
    else:
        notification.data["email_error"] = error
    Notification.objects.filter(pk=notification.pk).update(data=notification.data)


def _send_emails(notification_ids: list[int]) -> None:
    """After commit: send the queued e-mails over one connection; log and record failures."""
    notifications = list(
        Notification.objects.filter(pk__in=notification_ids).order_by("pk").select_related("user")
    )
    pending = [n for n in notifications if n.data.get("email_to") and "email_sent_at" not in n.data]
    if not pending:
        return
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except Exception as exc:  # any backend error: the business transaction has committed
        logger.warning("e-mail connection failed, %d messages not sent: %s", len(pending), exc)
        for notification in pending:
            _record_email(notification, error=f"{type(exc).__name__}: {exc}")
        return
    try:
        for notification in pending:
            message = EmailMessage(
                subject=notification.title,
                body=_email_body(notification),
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[notification.data["email_to"]],
                connection=connection,
            )
            try:
                message.send()
            except Exception as exc:  # one bad address must not stop the others
                logger.warning("e-mail for notification %s failed: %s", notification.pk, exc)
                _record_email(notification, error=f"{type(exc).__name__}: {exc}")
            else:
                _record_email(notification, error=None)
    finally:
        try:
            connection.close()
        except Exception as exc:  # closing a broken connection is not worth an error
            logger.info("closing the e-mail connection failed: %s", exc)


@transaction.atomic
def notification_mark_read(
    *, actor: AbstractBaseUser, notification_ids: list[int] | None = None
) -> int:
    """Mark the actor's notifications read (all of them when `notification_ids` is None);
    returns how many were unread. Ids that are not in the actor's inbox → NotFound."""
    user = _require_user(actor, "marking notifications read")
    unread = Notification.objects.filter(user_id=user.pk, read_at__isnull=True)
    if notification_ids is not None:
        try:
            wanted = {int(i) for i in notification_ids}
        except (TypeError, ValueError):
            raise InvalidInput(
                gettext_noop("notification ids must be whole numbers, got %(notification_ids)s"),
                details={"field": "notification_ids"},
                params={"notification_ids": repr(notification_ids)},
            ) from None
        own = set(
            Notification.objects.filter(user_id=user.pk, pk__in=wanted).values_list("pk", flat=True)
        )
        foreign = sorted(wanted - own)
        if foreign:
            raise NotFound(
                gettext_noop("notification %(foreign)s is not in %(user)s's inbox"),
                details={"notification_ids": foreign},
                params={"foreign": ", ".join(map(str, foreign)), "user": user.get_username()},
            )
        unread = unread.filter(pk__in=wanted)
    return unread.update(read_at=timezone.now())


# --- webhooks -----------------------------------------------------------------------------


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
    data = _jsonable(payload, strict=True, where="payload")
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


# --- webhook endpoints ---------------------------------------------------------------------


def _webhook_scope_check(actor: AbstractBaseUser, company: Company | None) -> None:
    """An endpoint of the group receives every company's events: its writer needs
    access.manage over every company; one of a company, over that company."""
    if company is None:
        require_company_wide(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    else:
        require_unit_wide(actor, Perm.ACCESS_MANAGE, company.unit, what="webhook endpoints")


def webhook_endpoint_list(*, actor: AbstractBaseUser) -> list[WebhookEndpoint]:
    """The endpoints `actor` may see: every one for a manager of every company, else those
    of the companies they manage (never the group's, which carry other companies' events)."""
    from closeout.access.selectors import companies_managed

    require(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    everywhere, managed = companies_managed(actor, str(Perm.ACCESS_MANAGE))
    if not managed:  # a manager of part of one company manages no endpoint
        require_company_wide(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    rows = WebhookEndpoint.objects.select_related("company__unit").order_by("pk")
    return list(rows if everywhere else rows.filter(company__in=managed))


def webhook_endpoint_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    url: str,
    events: list[str],
    secret: str = "",
    company: Company | None = None,
) -> WebhookEndpoint:
    _webhook_scope_check(actor, company)
    if not name.strip():
        raise InvalidInput(
            gettext_noop("webhook name is empty"), details={"field": "name"}, params={}
        )
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError as exc:
        raise InvalidInput(
            gettext_noop("'%(url)s' is not an http(s) URL"),
            details={"field": "url"},
            params={"url": url},
        ) from exc
    webhook_url_check(url)
    if any(not isinstance(e, str) or not e.strip() for e in events):
        raise InvalidInput(
            gettext_noop("webhook events must be non-empty names"),
            details={"field": "events"},
            params={},
        )
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(name=name).exists():
            raise Conflict(
                gettext_noop("a webhook endpoint named '%(name)s' exists"),
                details={"field": "name"},
                params={"name": name},
            )
        endpoint = WebhookEndpoint.objects.create(
            name=name,
            url=url,
            events=events,
            secret=secret or secrets.token_urlsafe(32),
            company=company,
        )
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_CHANGED,
            object_type=AuditObject.WEBHOOK_ENDPOINT,
            object_id=endpoint.pk,
            object_repr=name,
            data={"url": url, "events": events, "active": True}
            | ({"company": company.code} if company is not None else {}),
            reason="webhook endpoint created",
        )
    return endpoint


def webhook_endpoint_deactivate(*, actor: AbstractBaseUser, endpoint_id: int) -> WebhookEndpoint:
    require(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    with transaction.atomic():
        endpoint = (
            # Only the endpoint's row: its company is a nullable join, which PostgreSQL
            # cannot lock.
            WebhookEndpoint.objects.select_for_update(no_key=True, of=("self",))
            .select_related("company__unit")
            .filter(pk=endpoint_id)
            .first()
        )
        if endpoint is not None and endpoint not in webhook_endpoint_list(actor=actor):
            endpoint = None  # another company's endpoint: as if it did not exist
        if endpoint is None:
            raise NotFound(
                gettext_noop("no webhook endpoint #%(endpoint_id)s"),
                params={"endpoint_id": endpoint_id},
            )
        if not endpoint.active:
            raise InvalidInput(
                gettext_noop("webhook endpoint #%(endpoint_id)s is already inactive"),
                params={"endpoint_id": endpoint_id},
            )
        _webhook_scope_check(actor, endpoint.company)
        endpoint.active = False
        endpoint.save(update_fields=["active"])
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_CHANGED,
            object_type=AuditObject.WEBHOOK_ENDPOINT,
            object_id=endpoint.pk,
            object_repr=endpoint.name,
            data={"active": {"before": True, "after": False}},
            reason="webhook endpoint deactivated",
        )
    return endpoint
