"""Alert rules (预警, S17) and what each run found."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class AlertCode(models.TextChoices):
    COMPLETE_BUT_OPEN = "complete_but_open", _("complete but open")
    OVERDUE = "overdue", _("overdue")
    STALE = "stale", _("stale")
    APPROVAL_OVERDUE = "approval_overdue", _("approval overdue")
    GRANT_EXPIRING = "grant_expiring", _("grant expiring")


class AlertRule(models.Model):
    """One alert of the group (company empty: every company's documents, except those of a
    company with its own rule of the same code) or of one company (its documents only)."""

    code = models.CharField(max_length=30, choices=AlertCode.choices)
    company = models.ForeignKey(
        "core.Company",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("company"),
        help_text=_("empty = the whole group (every company)"),
    )
    active = models.BooleanField(_("active"), default=True)
    days = models.PositiveIntegerField(
        _("days"),
        default=0,
        help_text="complete_but_open: days past the grace period; overdue: days past the "
        "expected date; stale: days without activity; grant_expiring: days ahead",
    )
    recipients_role = models.CharField(
        _("recipients' role"),
        max_length=40,
        default="supervisor",
        help_text="a digest goes to every user holding this role",
    )

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=Q(company__isnull=True), name="alertrule_group_code_uniq"
            ),
            models.UniqueConstraint(fields=["company", "code"], name="alertrule_company_code_uniq"),
        ]

    def __str__(self) -> str:
        return self.get_code_display()


class AlertRun(models.Model):
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="runs")
    ran_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    by_type = models.JSONField(default=dict)
    sample = models.JSONField(default=list)

    class Meta:
        verbose_name = _("alert run")
        verbose_name_plural = _("alert runs")
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"{self.rule.code} {self.ran_at:%Y-%m-%d %H:%M} {self.count}"
