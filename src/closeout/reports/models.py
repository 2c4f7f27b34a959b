"""Reports, consistency diagnostics and archive packs (S15, S16, S21, S22, S23)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class DiagnosticTrigger(models.TextChoices):
    MANUAL = "manual", _("manual")
    SCHEDULED = "scheduled", _("scheduled")


class DiagnosticRun(models.Model):
    """One run of the consistency checks (数据校验, S21): how many rows each check found."""

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    trigger = models.CharField(_("trigger"), max_length=10, choices=DiagnosticTrigger.choices)
    run_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # {check code: number of offending rows}
    counts = models.JSONField(_("counts"), default=dict)
    problems = models.PositiveIntegerField(_("problems"), default=0)

    class Meta:
        verbose_name = _("diagnostic run")
        verbose_name_plural = _("diagnostic runs")
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"diagnostics #{self.pk} {self.trigger} {self.problems}"


class PostCloseVerification(models.Model):
    """The check after a batch job (结案后校验, S16): states, commitments and audit trail."""

    job = models.ForeignKey(
        "batches.BatchJob", on_delete=models.CASCADE, related_name="verifications"
    )
    created_at = models.DateTimeField(_("time"))
    run_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    passed = models.BooleanField(_("passed"), default=False)
    documents_checked = models.PositiveIntegerField(default=0)
    lines_checked = models.PositiveIntegerField(default=0)
    items_checked = models.PositiveIntegerField(default=0)
    chain_intact = models.BooleanField(default=False)
    chain_problem = models.TextField(blank=True)
    # [{"check": "state"|"commitments"|"audit", "document": label, "line": n, "message": text}]
    problems = models.JSONField(pgettext_lazy("count", "problems"), default=list)
    problem_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("post-close verification")
        verbose_name_plural = _("post-close verifications")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"verification of batch #{self.job_id}: {'ok' if self.passed else 'problems'}"
