"""Notifications, preferences and webhooks, read-only: endpoints are added and deactivated
through the API (access.manage, audited); a webhook secret is shown once, when its endpoint is
created, and never here."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from closeout.core.admin import ReadOnlyAdmin
from closeout.notifications.models import (
    DeliveryStatus,
    Notification,
    Preference,
    WebhookDelivery,
    WebhookEndpoint,
)
from closeout.notifications.webhooks import webhook_deliver


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "kind", "title", "read_at")
    list_filter = ("kind",)
    search_fields = ("title", "user__username")
    raw_id_fields = ("user",)


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyAdmin):
    list_display = ("user", "language", "email_enabled")
    raw_id_fields = ("user",)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("name", "url", "events", "active", "secret_shown", "created_at")
    list_filter = ("active",)
    fields = ("name", "url", "events", "active", "secret_shown", "created_at")
    readonly_fields = fields

    @admin.display(description=_("secret"))
    def secret_shown(self, endpoint: WebhookEndpoint) -> str:
        return "••••" if endpoint.secret else "—"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: read-only, rows are written by the outbox only. "Retry now" is an
    attempt through the delivery service (the same as `closeout webhooks retry`)."""

    list_display = (
        "id",
        "endpoint",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    )
    list_filter = ("status", "event", "endpoint")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["retry_now"]

    @admin.action(description=_("Retry now (pending only)"))
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        outcomes = [
            webhook_deliver(pk, force=True).status
            for pk in queryset.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True)
        ]
        delivered = outcomes.count(DeliveryStatus.DELIVERED)
        self.message_user(
            request,
            f"{len(outcomes)} attempted, {delivered} delivered",
            messages.SUCCESS if delivered == len(outcomes) else messages.WARNING,
        )
