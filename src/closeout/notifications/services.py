"""Writes for in-app notifications: a message per recipient in their language, an e-mail after
the caller's transaction commits, the read marks and the recipient's own preferences.

Nothing leaves the process before the caller's transaction commits: e-mails are started from
`transaction.on_commit`, so a rollback sends nothing. A failure to send is recorded on the
Notification and never breaks the business transaction, which has committed by then.
Webhooks live in `notifications.webhooks` (delivery) and `notifications.webhook_endpoints`.
"""

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput, NotFound, PermissionDenied
from closeout.core.notice_kinds import NoticeKind
from closeout.notifications.catalog import EN, LANGUAGES, ZH, check_context, kind_for, render
from closeout.notifications.models import LINK_MAX_LENGTH, Notification, Preference
from closeout.notifications.payloads import jsonable

logger = logging.getLogger(__name__)

_EMAIL_FOOTER = {
    ZH: "—— closeout 结案系统。可以在个人通知偏好中关闭邮件通知。",
    EN: "— closeout. You can turn these e-mails off in your notification preferences.",
}


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
    stored_context = jsonable(context, strict=False, where="context")
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
