"""Approval routes (审批流), close and reopen requests, per-step decisions, attachments and
accounting periods (S9, S12)."""

from typing import Any

from django.conf import settings
from django.db import models

from closeout.documents.models import DocType


class RequestAction(models.TextChoices):
    CLOSE = "close", "结案 close"
    REOPEN = "reopen", "反结案 reopen"


class ExceptionCondition(models.TextChoices):
    ANY = "any", "不限 any"
    EXCEPTION = "exception", "例外结案 exception close"
    NORMAL = "normal", "无例外 no exception"


class ApprovalRoute(models.Model):
    """Which steps a request needs. The first active route that matches (lowest priority
    number) is chosen at submission and copied onto the request."""

    name = models.CharField("名称 name", max_length=100)
    action = models.CharField("动作 action", max_length=10, choices=RequestAction.choices)
    doc_type = models.CharField(
        "单据类型 type", max_length=20, choices=DocType.choices, blank=True, help_text="empty = any"
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
        "条件 condition",
        max_length=10,
        choices=ExceptionCondition.choices,
        default=ExceptionCondition.ANY,
    )
    min_open_value = models.DecimalField(
        "未结金额下限 open value from", max_digits=20, decimal_places=4, null=True, blank=True
    )
    max_open_value = models.DecimalField(
        "未结金额上限 open value below", max_digits=20, decimal_places=4, null=True, blank=True
    )
    min_total = models.DecimalField(
        "单据金额下限 total from", max_digits=20, decimal_places=4, null=True, blank=True
    )
    max_total = models.DecimalField(
        "单据金额上限 total below", max_digits=20, decimal_places=4, null=True, blank=True
    )
    for_closed_period = models.BooleanField(
        "已关账期间 closed period",
        default=False,
        help_text="the route every reopen takes when the close date lies in a closed period",
    )
    priority = models.PositiveIntegerField("优先级 priority", default=100)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "审批流 approval route"
        verbose_name_plural = "审批流 approval routes"
        ordering = ["action", "priority", "id"]

    def __str__(self) -> str:
        return self.name


class ApprovalStep(models.Model):
    route = models.ForeignKey(ApprovalRoute, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField("顺序 order")
    name = models.CharField("节点 step", max_length=100)
    role = models.ForeignKey("access.Role", on_delete=models.PROTECT, related_name="+")
    sla_hours = models.PositiveIntegerField("时限(小时) SLA hours", default=24)

    class Meta:
        verbose_name = "审批节点 approval step"
        verbose_name_plural = "审批节点 approval steps"
        ordering = ["route", "order"]
        constraints = [
            models.UniqueConstraint(fields=["route", "order"], name="approval_step_order_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.route.name} #{self.order} {self.name}"


class RequestState(models.TextChoices):
    PENDING = "pending", "审批中 pending"
    REJECTED = "rejected", "已驳回 rejected"
    WITHDRAWN = "withdrawn", "已撤回 withdrawn"
    EXECUTED = "executed", "已执行 executed"


class CloseRequest(models.Model):
    document = models.ForeignKey(
        "documents.Document", on_delete=models.PROTECT, related_name="close_requests"
    )
    action = models.CharField("动作 action", max_length=10, choices=RequestAction.choices)
    line_nos = models.JSONField("行 lines", null=True, blank=True, help_text="empty = whole")
    reason_code = models.CharField("原因 reason", max_length=40)
    remark = models.TextField("备注 remark", blank=True)
    close_date = models.DateField("结案日期 close date", null=True, blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(
        "状态 state", max_length=12, choices=RequestState.choices, default=RequestState.PENDING
    )
    route = models.ForeignKey(
        ApprovalRoute, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The route's steps as they were at submission: later configuration changes do not touch
    # requests in flight.
    steps = models.JSONField("节点 steps", default=list)
    current_step = models.PositiveSmallIntegerField(default=1)
    round = models.PositiveSmallIntegerField("轮次 round", default=1)
    exception = models.BooleanField("例外 exception", default=False)
    open_value = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    checklist = models.JSONField("提交时核对 checklist at submission", default=list)
    submitted_at = models.DateTimeField()
    step_started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    overdue_notified_step = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "结案申请 close request"
        verbose_name_plural = "结案申请 close requests"
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
    APPROVE = "approve", "同意 approve"
    REJECT = "reject", "驳回 reject"


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
        verbose_name = "审批记录 approval decision"
        verbose_name_plural = "审批记录 approval decisions"
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
        verbose_name = "附件 attachment"
        verbose_name_plural = "附件 attachments"

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
    closed = models.BooleanField("已关账 closed", default=False)

    class Meta:
        verbose_name = "会计期间 accounting period"
        verbose_name_plural = "会计期间 accounting periods"
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
