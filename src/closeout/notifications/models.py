"""Inbox messages, per-user notification preferences, webhook endpoints and their delivery log."""

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

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
    kind = models.CharField("类型 kind", max_length=40)
    title = models.CharField("标题 title", max_length=300)
    body = models.TextField("内容 body")
    link = models.CharField("链接 link", max_length=LINK_MAX_LENGTH, blank=True)
    data = models.JSONField("数据 data", default=dict, blank=True)
    created_at = models.DateTimeField("时间 created at", default=timezone.now)
    read_at = models.DateTimeField("已读 read at", null=True, blank=True)

    class Meta:
        verbose_name = "通知 notification"
        verbose_name_plural = "通知 notifications"
        indexes = [models.Index(fields=["user", "read_at"], name="notif_user_read_idx")]

    def __str__(self) -> str:
        return f"{self.user} · {self.kind} · {self.title}"


class Preference(models.Model):
    """How a user wants to be told: language of messages and whether e-mails are sent."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="closeout_preference"
    )
    language = models.CharField(
        "语言 language", max_length=10, choices=Language.choices, default=Language.ZH_HANS
    )
    email_enabled = models.BooleanField("邮件通知 e-mail enabled", default=True)

    class Meta:
        verbose_name = "通知偏好 notification preference"
        verbose_name_plural = "通知偏好 notification preferences"

    def __str__(self) -> str:
        return f"{self.user} · {self.language} · e-mail {'on' if self.email_enabled else 'off'}"


class WebhookEndpoint(models.Model):
    """A receiver of signed event POSTs. An empty `events` list subscribes to every event.
    An endpoint of a company receives only the events of that company's documents; one of the
    group (company empty) receives every event."""

    name = models.CharField("名称 name", max_length=100, unique=True)
    company = models.ForeignKey(
        "core.Company",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="公司 company",
        help_text="empty = the whole group (every company's events)",
    )
    url = models.CharField(
        "地址 URL", max_length=500, validators=[URLValidator(schemes=["http", "https"])]
    )
    secret = models.CharField("密钥 secret", max_length=200)
    events = models.JSONField(
        "事件 events", default=list, blank=True, help_text="empty = every event"
    )
    active = models.BooleanField("启用 active", default=True)
    created_at = models.DateTimeField("创建 created at", default=timezone.now)

    class Meta:
        verbose_name = "Webhook 端点 webhook endpoint"
        verbose_name_plural = "Webhook 端点 webhook endpoints"

    def __str__(self) -> str:
        return f"{self.name} → {self.url}"

    def subscribes_to(self, event: str) -> bool:
        return not self.events or event in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "待发送 pending"
    DELIVERED = "delivered", "已送达 delivered"
    FAILED = "failed", "失败 failed"


class WebhookDelivery(models.Model):
    """The outbox row and delivery log of one event for one endpoint."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField("事件 event", max_length=60)
    payload = models.JSONField("数据 payload", default=dict)
    status = models.CharField(
        "状态 status",
        max_length=10,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
    )
    attempts = models.PositiveIntegerField("尝试次数 attempts", default=0)
    next_attempt_at = models.DateTimeField("下次尝试 next attempt at", null=True, blank=True)
    last_attempt_at = models.DateTimeField("上次尝试 last attempt at", null=True, blank=True)
    last_status_code = models.PositiveIntegerField("上次状态码 last status", null=True, blank=True)
    last_error = models.TextField("上次错误 last error", blank=True)
    delivered_at = models.DateTimeField("送达 delivered at", null=True, blank=True)
    created_at = models.DateTimeField("创建 created at", default=timezone.now)

    class Meta:
        verbose_name = "Webhook 投递 webhook delivery"
        verbose_name_plural = "Webhook 投递 webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event} → {self.endpoint_id} ({self.status})"
