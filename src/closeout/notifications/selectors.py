"""Reads for notifications: a user's inbox and unread count, the webhook delivery log."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput
from closeout.notifications.models import (
    DeliveryStatus,
    Notification,
    Preference,
    WebhookDelivery,
)
from closeout.notifications.services import user_language

__all__ = [
    "email_enabled_for",
    "inbox_for",
    "unread_count",
    "user_language",
    "webhook_delivery_log",
]


def inbox_for(user: AbstractBaseUser) -> QuerySet[Notification]:
    """The user's notifications, newest first."""
    return Notification.objects.filter(user_id=user.pk).order_by("-created_at", "-pk")


def email_enabled_for(user: AbstractBaseUser) -> bool:
    """Whether the user's notifications are e-mailed too (yes until they switch it off)."""
    enabled = (
        Preference.objects.filter(user_id=user.pk).values_list("email_enabled", flat=True).first()
    )
    return True if enabled is None else bool(enabled)


def unread_count(user: AbstractBaseUser) -> int:
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()


def webhook_delivery_log(
    *, status: str | None = None, limit: int = 50
) -> QuerySet[WebhookDelivery]:
    """The newest webhook deliveries (optionally of one status), with their endpoint."""
    rows = WebhookDelivery.objects.select_related("endpoint").order_by("-created_at", "-pk")
    if status is not None:
        if status not in DeliveryStatus.values:
            raise InvalidInput(
                gettext_noop("webhook delivery status %(status)s is not one of %(values)s"),
                details={"field": "status"},
                params={"status": repr(status), "values": ", ".join(DeliveryStatus.values)},
            )
        rows = rows.filter(status=status)
    return rows[:limit]
