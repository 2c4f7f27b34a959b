"""Approval routes (审批流), close and reopen requests, per-step decisions, attachments and
accounting periods (S9, S12)."""

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from closeout.documents.models import DocType


class RequestAction(models.TextChoices):
    CLOSE = "close", pgettext_lazy("close action", "close")
    REOPEN = "reopen", pgettext_lazy("close action", "reopen")


class ExceptionCondition(models.TextChoices):
    ANY = "any", pgettext_lazy("route condition", "any")
    EXCEPTION = "exception", _("exception close")
    NORMAL = "normal", _("no exception")


class ApprovalRoute(models.Model):
    """Which steps a request needs. The first active route that matches (lowest priority
    number) is chosen at submission and copied onto the request."""

    name = models.CharField(_("name"), max_length=100)
    action = models.CharField(_("action"), max_length=10, choices=RequestAction.choices)
    doc_type = models.CharField(
        _("type"), max_length=20, choices=DocType.choices, blank=True, help_text="empty = any"
    )
    org_unit = models.ForeignKey(
        "core.OrgUnit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="empty = any; otherwise this unit and its descendants",
    )
    condition = models.CharField(
        _("condition"),
        max_length=10,
        choices=ExceptionCondition.choices,
        default=ExceptionCondition.ANY,
    )
    min_open_value = models.DecimalField(
        _("open value from"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    max_open_value = models.DecimalField(
        _("open value below"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    min_total = models.DecimalField(
        _("total from"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    max_total = models.DecimalField(
        _("total below"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    for_closed_period = models.BooleanField(
        _("closed period"),
        default=False,
        help_text="the route every reopen takes when the close date lies in a closed period",
    )
    priority = models.PositiveIntegerField(_("priority"), default=100)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("approval route")
        verbose_name_plural = _("approval routes")
        ordering = ["action", "priority", "id"]

    def __str__(self) -> str:
        return self.name


class ApprovalStep(models.Model):
    route = models.ForeignKey(ApprovalRoute, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(_("order"))
    name = models.CharField(_("step"), max_length=100)
    role = models.ForeignKey("access.Role", on_delete=models.PROTECT, related_name="+")
    sla_hours = models.PositiveIntegerField(_("SLA hours"), default=24)

    class Meta:
        verbose_name = _("approval step")
        verbose_name_plural = _("approval steps")
        ordering = ["route", "order"]
        constraints = [
            models.UniqueConstraint(fields=["route", "order"], name="approval_step_order_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.route.name} #{self.order} {self.name}"


class RequestState(models.TextChoices):
    PENDING = "pending", pgettext_lazy("request state", "pending")
    REJECTED = "rejected", _("rejected")
    WITHDRAWN = "withdrawn", _("withdrawn")
    EXECUTED = "executed", _("executed")


class CloseRequest(models.Model):
    document = models.ForeignKey(
        "documents.Document", on_delete=models.PROTECT, related_name="close_requests"
    )
    action = models.CharField(_("action"), max_length=10, choices=RequestAction.choices)
    line_nos = models.JSONField(_("lines"), null=True, blank=True, help_text="empty = whole")
    reason_code = models.CharField(_("reason"), max_length=40)
    remark = models.TextField(_("remark"), blank=True)
    close_date = models.DateField(_("close date"), null=True, blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(
        _("state"), max_length=12, choices=RequestState.choices, default=RequestState.PENDING
    )
    route = models.ForeignKey(
        ApprovalRoute, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The route's steps as they were at submission: later configuration changes do not touch
    # requests in flight.
    steps = models.JSONField(_("steps"), default=list)
    current_step = models.PositiveSmallIntegerField(default=1)
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    exception = models.BooleanField(_("exception"), default=False)
    open_value = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    checklist = models.JSONField(_("checklist at submission"), default=list)
    submitted_at = models.DateTimeField()
    step_started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    overdue_notified_step = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("close request")
        verbose_name_plural = _("close requests")
        ordering = ["-submitted_at"]
        indexes = [models.Index(fields=["state", "current_step"], name="request_state_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.document_id}"

    @property
    def step(self) -> dict[str, Any] | None:
        for step in self.steps:
            if step["order"] == self.current_step:
                return dict(step)
        return None


class Decision(models.TextChoices):
    APPROVE = "approve", pgettext_lazy("decision", "approve")
    REJECT = "reject", pgettext_lazy("decision", "reject")


class ApprovalDecision(models.Model):
    request = models.ForeignKey(CloseRequest, on_delete=models.CASCADE, related_name="decisions")
    round = models.PositiveSmallIntegerField()
    step_order = models.PositiveSmallIntegerField()
    step_name = models.CharField(max_length=100)
    decider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField()

    class Meta:
        verbose_name = _("approval decision")
        verbose_name_plural = _("approval decisions")
        ordering = ["request", "round", "step_order"]
        constraints = [
            # One decision per step and round: two approvers racing, only one is recorded.
            models.UniqueConstraint(
                fields=["request", "round", "step_order"], name="decision_one_per_step"
            )
        ]

    def __str__(self) -> str:
        return f"{self.request_id} r{self.round} s{self.step_order} {self.decision}"


class Attachment(models.Model):
    request = models.ForeignKey(CloseRequest, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="attachments/%Y/%m/")
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.original_name


class AccountingPeriod(models.Model):
    """A month or other period of one company (of every company when `company` is empty, as
    before companies); once closed (已关账), reopening a document of that company whose close
    date lies in it always takes the closed-period route."""

    name = models.CharField(max_length=40)
    company = models.ForeignKey(
        "core.Company", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start = models.DateField()
    end = models.DateField()
    closed = models.BooleanField(pgettext_lazy("accounting period", "closed"), default=False)

    class Meta:
        verbose_name = _("accounting period")
        verbose_name_plural = _("accounting periods")
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="period_company_name_uniq"),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(company__isnull=True),
                name="period_all_companies_name_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name
