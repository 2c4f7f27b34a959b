"""Append-only, hash-chained audit events (操作日志)."""

from enum import IntEnum
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise as StrOrPromise


class AuditAction(IntEnum):
    """Numbered ranges per domain, with gaps for later: 1xx documents, 2xx closing,
    3xx approvals, 4xx access, 5xx configuration, 9xx maintenance."""

    DOCUMENT_CREATED = 101
    DOCUMENT_UPDATED = 102
    EVENT_APPLIED = 110
    EVENT_PENDING = 111
    EVENT_CONFIRMED = 112
    EVENT_QUARANTINED = 113
    EVENT_RELEASED_FROM_QUARANTINE = 114
    DOCUMENT_CHANGE_REFUSED = 120
    # Master data pushed by the ERP (PUT /api/partners/{code}).
    PARTNER_CREATED = 130
    PARTNER_UPDATED = 131

    DOCUMENT_CLOSED = 201
    LINES_CLOSED = 202
    DOCUMENT_REOPENED = 203
    DOCUMENT_HELD = 204
    DOCUMENT_RELEASED = 205
    LINES_HELD = 206
    LINES_RELEASED = 207
    LINES_REOPENED = 208
    CLOSE_REQUESTED = 210
    CLOSE_REQUEST_ENDED = 211
    REOPEN_REQUESTED = 212
    REOPEN_REQUEST_ENDED = 213
    DOCUMENT_ARCHIVED = 220
    ARCHIVE_PACK_EXPORTED = 221
    SWEEP_RUN = 230
    BATCH_STARTED = 240
    BATCH_FINISHED = 241
    BATCH_FAILED = 242
    BATCH_UNDO_CREATED = 243
    IMPORT_VALIDATED = 250
    IMPORT_EXECUTED = 251
    DIAGNOSTICS_RUN = 260
    POST_CLOSE_VERIFIED = 261
    # Close dimensions (关闭维度) of lines: receiving, invoicing, payment …
    LINE_DIMENSIONS_CLOSED = 270
    LINE_DIMENSIONS_REOPENED = 271

    APPROVAL_DECIDED = 301
    EXECUTION_REFUSED = 302
    ATTACHMENT_ADDED = 303

    GRANT_CREATED = 401
    GRANT_REVOKED = 402
    GRANT_EXPIRED = 403
    GRANT_EXTENDED = 404
    ROLE_CHANGED = 410
    TOKEN_CREATED = 420
    TOKEN_REVOKED = 421
    LOGIN_LOCKED_OUT = 430
    USER_CREATED = 440
    PASSWORD_SET = 441

    POLICY_CHANGED = 501
    REASON_CHANGED = 502
    ROUTE_CHANGED = 503
    PERIOD_CHANGED = 504
    ALERT_RULE_CHANGED = 505
    WEBHOOK_CHANGED = 510
    COMPANY_CREATED = 530
    EXCHANGE_RATE_SET = 531

    DATA_EXPORTED = 910
    BACKUP_TAKEN = 920
    RESTORE_DONE = 921

    @property
    def label(self) -> str:
        return self.name.lower()


# What people read for each action (the audit pages, a document's history): with the actions,
# in the active language.
AUDIT_ACTION_WORDS: dict[str, "StrOrPromise"] = {
    "document_created": pgettext_lazy("audit action", "document created"),
    "document_updated": pgettext_lazy("audit action", "document updated"),
    "event_applied": pgettext_lazy("audit action", "event applied"),
    "event_pending": pgettext_lazy("audit action", "event pending"),
    "event_confirmed": pgettext_lazy("audit action", "event confirmed"),
    "event_quarantined": pgettext_lazy("audit action", "event quarantined"),
    "event_released_from_quarantine": pgettext_lazy("audit action", "quarantined event applied"),
    "document_change_refused": pgettext_lazy("audit action", "change refused"),
    "partner_created": pgettext_lazy("audit action", "partner created"),
    "partner_updated": pgettext_lazy("audit action", "partner updated"),
    "document_closed": pgettext_lazy("audit action", "document closed"),
    "lines_closed": pgettext_lazy("audit action", "lines closed"),
    "document_reopened": pgettext_lazy("audit action", "document reopened"),
    "document_held": pgettext_lazy("audit action", "document held"),
    "document_released": pgettext_lazy("audit action", "document released"),
    "lines_held": pgettext_lazy("audit action", "lines held"),
    "lines_released": pgettext_lazy("audit action", "lines released"),
    "lines_reopened": pgettext_lazy("audit action", "lines reopened"),
    "line_dimensions_closed": pgettext_lazy("audit action", "line dimension closed"),
    "line_dimensions_reopened": pgettext_lazy("audit action", "line dimension reopened"),
    "close_requested": pgettext_lazy("audit action", "close requested"),
    "close_request_ended": pgettext_lazy("audit action", "close request ended"),
    "reopen_requested": pgettext_lazy("audit action", "reopen requested"),
    "reopen_request_ended": pgettext_lazy("audit action", "reopen request ended"),
    "document_archived": pgettext_lazy("audit action", "document archived"),
    "sweep_run": pgettext_lazy("audit action", "sweep run"),
    "batch_started": pgettext_lazy("audit action", "batch started"),
    "batch_finished": pgettext_lazy("audit action", "batch finished"),
    "approval_decided": pgettext_lazy("audit action", "approval decided"),
    "execution_refused": pgettext_lazy("audit action", "execution refused"),
    "attachment_added": pgettext_lazy("audit action", "attachment added"),
    "grant_created": pgettext_lazy("audit action", "grant created"),
    "grant_revoked": pgettext_lazy("audit action", "grant revoked"),
    "grant_expired": pgettext_lazy("audit action", "grant expired"),
    "grant_extended": pgettext_lazy("audit action", "grant extended"),
    "role_changed": pgettext_lazy("audit action", "role changed"),
    "login_locked_out": pgettext_lazy("audit action", "sign-in locked"),
    "user_created": pgettext_lazy("audit action", "user created"),
    "password_set": pgettext_lazy("audit action", "password set"),
    "policy_changed": pgettext_lazy("audit action", "policy changed"),
    "reason_changed": pgettext_lazy("audit action", "reason changed"),
    "route_changed": pgettext_lazy("audit action", "approval route changed"),
    "period_changed": pgettext_lazy("audit action", "accounting period changed"),
    "archive_pack_exported": pgettext_lazy("audit action", "archive pack exported"),
    "batch_failed": pgettext_lazy("audit action", "batch failed"),
    "import_validated": pgettext_lazy("audit action", "import validated"),
    "import_executed": pgettext_lazy("audit action", "import executed"),
    "diagnostics_run": pgettext_lazy("audit action", "diagnostics run"),
    "post_close_verified": pgettext_lazy("audit action", "post-close verified"),
    "token_created": pgettext_lazy("audit action", "token created"),
    "token_revoked": pgettext_lazy("audit action", "token revoked"),
    "webhook_changed": pgettext_lazy("audit action", "webhook changed"),
    "data_exported": pgettext_lazy("audit action", "data exported"),
    "backup_taken": pgettext_lazy("audit action", "backup taken"),
    "restore_done": pgettext_lazy("audit action", "restore done"),
    "batch_undo_created": pgettext_lazy("audit action", "batch undo created"),
    "company_created": pgettext_lazy("audit action", "company created"),
    "exchange_rate_set": pgettext_lazy("audit action", "exchange rate set"),
    "alert_rule_changed": pgettext_lazy("audit action", "alert rule changed"),
}


def audit_action_words(code: str) -> str:
    """An audit action (its code name, `document_closed`) in the active language; an unknown
    code as it is."""
    words = AUDIT_ACTION_WORDS.get(code)
    return str(words) if words is not None else code


class AuditObject(models.TextChoices):
    """What an audit event is about (`AuditEvent.object_type`)."""

    DOCUMENT = "document", pgettext_lazy("audit object", "document")
    CLOSE_REQUEST = "close_request", pgettext_lazy("audit object", "close or reopen request")
    BATCH = "batch", pgettext_lazy("audit object", "batch job")
    IMPORT = "import", pgettext_lazy("audit object", "import")
    SWEEP = "sweep", pgettext_lazy("audit object", "automatic close run")
    GRANT = "grant", pgettext_lazy("audit object", "grant")
    USER = "user", pgettext_lazy("audit object", "user")
    LOGIN = "login", pgettext_lazy("audit object", "sign-in")
    API_TOKEN = "api_token", pgettext_lazy("audit object", "API token")
    PARTNER = "partner", pgettext_lazy("audit object", "partner")
    CLOSE_POLICY = "close_policy", pgettext_lazy("audit object", "close policy")
    WEBHOOK_ENDPOINT = "webhook_endpoint", pgettext_lazy("audit object", "webhook endpoint")
    REPORT = "report", pgettext_lazy("audit object", "report")
    ARCHIVE_PACK = "archive_pack", pgettext_lazy("audit object", "evidence pack")
    DIAGNOSTIC_RUN = "diagnostic_run", pgettext_lazy("audit object", "diagnostics run")
    GEN_DATA = "gen_data", pgettext_lazy("audit object", "generated test data")
    AUDIT_LOG = "audit_log", pgettext_lazy("audit object", "audit log")
    ACCOUNTING_PERIOD = "accounting_period", pgettext_lazy("audit object", "accounting period")
    APPROVAL_ROUTE = "approval_route", pgettext_lazy("audit object", "approval route")
    REASON_CODE = "reason_code", pgettext_lazy("audit object", "reason code")
    BACKUP = "backup", pgettext_lazy("audit object", "backup")
    COMPANY = "company", pgettext_lazy("audit object", "company")
    EXCHANGE_RATE = "exchange_rate", pgettext_lazy("audit object", "exchange rate")
    ROLE = "role", pgettext_lazy("audit object", "role")
    ALERT_RULE = "alert_rule", pgettext_lazy("audit object", "alert rule")


class AuditEvent(models.Model):
    seq = models.BigIntegerField(_("sequence"), unique=True)
    at = models.DateTimeField(_("time"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(_("actor"), max_length=150)
    action = models.PositiveSmallIntegerField(
        _("action"), choices=[(a.value, a.label) for a in AuditAction]
    )
    object_type = models.CharField(_("object"), max_length=40, choices=AuditObject.choices)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    data = models.JSONField(_("before/after"), default=dict)
    reason = models.TextField(_("reason"), blank=True)
    # The close request (审批申请) the event belongs to, if any.
    request_id = models.CharField(max_length=64, blank=True)
    # The HTTP request (or command run) that caused the event: closeout.core.request_id.
    http_request_id = models.CharField(_("HTTP request id"), max_length=64, blank=True)
    # The audit key the event was sealed with (HMAC-SHA-256); "" = before keys: plain SHA-256.
    key_id = models.CharField(_("key id"), max_length=16, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {AuditAction(self.action).label} {self.object_repr}"


class AuditChainHead(models.Model):
    """One row: the last sequence number and hash. Locking it serialises appends to the chain.
    Database triggers keep it at the chain's tail: it cannot be deleted or moved back, and an
    event can only be inserted right after it."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit head #{self.last_seq}"
