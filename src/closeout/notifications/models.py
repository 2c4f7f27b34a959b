"""Inbox messages, per-user notification preferences, webhook endpoints and their delivery log."""

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

LINK_MAX_LENGTH = 500


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class Notification(models.Model):
    """One in-app message for one user; `data` keeps the context it was rendered from and the
    e-mail outcome (`email_to`, `email_sent_at` or `email_error`)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="closeout_notifications"
    )
    kind = models.CharField(pgettext_lazy("notification", "kind"), max_length=40)
    title = models.CharField(_("title"), max_length=300)
    body = models.TextField(_("body"))
    link = models.CharField(_("link"), max_length=LINK_MAX_LENGTH, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(
        pgettext_lazy("notification", "created at"), default=timezone.now
    )
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [models.Index(fields=["user", "read_at"], name="notif_user_read_idx")]

    def __str__(self) -> str:
        return f"{self.user} · {self.kind} · {self.title}"


class Preference(models.Model):
    """How a user wants to be told: language of messages and whether e-mails are sent."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="closeout_preference"
    )
    language = models.CharField(
        _("language"), max_length=10, choices=Language.choices, default=Language.ZH_HANS
    )
    email_enabled = models.BooleanField(_("e-mail enabled"), default=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return f"{self.user} · {self.language} · e-mail {'on' if self.email_enabled else 'off'}"


class WebhookEndpoint(models.Model):
    """A receiver of signed event POSTs. An empty `events` list subscribes to every event.
    An endpoint of a company receives only the events of that company's documents; one of the
    group (company empty) receives every event."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    company = models.ForeignKey(
        "core.Company",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("company"),
        help_text=_("empty = the whole group (every company's events)"),
    )
    url = models.CharField(
        _("URL"), max_length=500, validators=[URLValidator(schemes=["http", "https"])]
    )
    secret = models.CharField(_("secret"), max_length=200)
    events = models.JSONField(
        _("events"), default=list, blank=True, help_text="empty = every event"
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = "Webhook 端点 webhook endpoint"
        verbose_name_plural = "Webhook 端点 webhook endpoints"

    def __str__(self) -> str:
        return f"{self.name} → {self.url}"

    def subscribes_to(self, event: str) -> bool:
        return not self.events or event in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", pgettext_lazy("delivery status", "pending")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed")


class WebhookDelivery(models.Model):
    """The outbox row and delivery log of one event for one endpoint."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(_("event"), max_length=60)
    payload = models.JSONField(_("payload"), default=dict)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveIntegerField(_("last status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = "Webhook 投递 webhook delivery"
        verbose_name_plural = "Webhook 投递 webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event} → {self.endpoint_id} ({self.status})"
