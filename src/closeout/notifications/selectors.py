"""Reads for notifications: a user's inbox and unread count, the webhook endpoints a user may
see and the delivery log of those endpoints."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import companies_managed
from closeout.access.services import require, require_company_wide
from closeout.core.companies import company_get
from closeout.core.errors import InvalidInput, NotFound
from closeout.notifications.models import (
    DeliveryStatus,
    Notification,
    Preference,
    WebhookDelivery,
    WebhookEndpoint,
)
from closeout.notifications.services import user_language

__all__ = [
    "email_enabled_for",
    "inbox_for",
    "unread_count",
    "user_language",
    "webhook_deliveries_visible",
    "webhook_delivery_log",
    "webhook_endpoint_list",
    "webhook_endpoint_visible",
    "webhook_endpoints_visible",
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


# --- webhook endpoints and their deliveries -------------------------------------------------


def webhook_endpoints_visible(*, actor: AbstractBaseUser) -> QuerySet[WebhookEndpoint]:
    """The endpoints `actor` may see: every one for a manager of every company, else those
    of the companies they manage (never the group's, which carry other companies' events).
    A manager of part of one company only is refused, as for writing one."""
    require(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    everywhere, managed = companies_managed(actor, str(Perm.ACCESS_MANAGE))
    if not managed:  # a manager of part of one company manages no endpoint
        require_company_wide(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    rows = WebhookEndpoint.objects.select_related("company__unit").order_by("pk")
    return rows if everywhere else rows.filter(company__in=managed)


def webhook_endpoint_list(*, actor: AbstractBaseUser) -> list[WebhookEndpoint]:
    """`webhook_endpoints_visible` as a list, oldest first."""
    return list(webhook_endpoints_visible(actor=actor))


def webhook_endpoint_visible(*, actor: AbstractBaseUser, endpoint_id: int) -> WebhookEndpoint:
    """One endpoint `actor` may see; another company's is NotFound, as if it did not exist."""
    endpoint = webhook_endpoints_visible(actor=actor).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(
            gettext_noop("no webhook endpoint #%(endpoint_id)s"),
            params={"endpoint_id": endpoint_id},
        )
    return endpoint


def webhook_deliveries_visible(
    *, actor: AbstractBaseUser, endpoint_id: int | None = None
) -> QuerySet[WebhookDelivery]:
    """Deliveries of the endpoints `actor` may see (the scope of `webhook_endpoints_visible`),
    or of one of them (another company's endpoint → NotFound); unordered, for a pager."""
    if endpoint_id is not None:
        endpoint = webhook_endpoint_visible(actor=actor, endpoint_id=endpoint_id)
        return WebhookDelivery.objects.filter(endpoint=endpoint).select_related("endpoint")
    endpoints = webhook_endpoints_visible(actor=actor).order_by().values("pk")
    return WebhookDelivery.objects.filter(endpoint__in=endpoints).select_related("endpoint")


def webhook_delivery_log(
    *, status: str | None = None, limit: int = 50, company: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The newest webhook deliveries (optionally of one status, and of the endpoints of one
    company by its code, the group's excluded), with their endpoint: the operator's log."""
    rows = WebhookDelivery.objects.select_related("endpoint").order_by("-created_at", "-pk")
    if status is not None:
        if status not in DeliveryStatus.values:
            raise InvalidInput(
                gettext_noop("webhook delivery status %(status)s is not one of %(values)s"),
                details={"field": "status"},
                params={"status": repr(status), "values": ", ".join(DeliveryStatus.values)},
            )
        rows = rows.filter(status=status)
    if company is not None:
        rows = rows.filter(endpoint__company=company_get(company))
    return rows[:limit]
