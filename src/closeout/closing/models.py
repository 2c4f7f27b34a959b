"""Close policies (tolerances, grace days, rule switches), reason codes and sweep reports."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from closeout.documents.models import DocType


class Severity(models.TextChoices):
    BLOCKING = "blocking", _("blocking")
    EXCEPTION = "exception", _("exception")
    WARNING = "warning", _("warning")


class ClosePolicy(models.Model):
    """Per document type, optionally per organisation unit (the most specific unit wins)."""

    doc_type = models.CharField(_("type"), max_length=20, choices=DocType.choices)
    org_unit = models.ForeignKey(
        "core.OrgUnit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="empty = default for the whole company",
    )
    under_qty_pct = models.DecimalField(
        _("under-delivery tolerance %"), default=0, max_digits=7, decimal_places=3
    )
    over_qty_pct = models.DecimalField(
        _("over-delivery tolerance %"), default=0, max_digits=7, decimal_places=3
    )
    match_qty_pct = models.DecimalField(
        _("invoice qty tolerance %"), default=0, max_digits=7, decimal_places=3
    )
    amount_tolerance_abs = models.DecimalField(
        _("amount tolerance"), default=0, max_digits=20, decimal_places=4
    )
    amount_tolerance_pct = models.DecimalField(
        _("amount tolerance %"), default=0, max_digits=7, decimal_places=3
    )
    write_off_amount = models.DecimalField(
        _("write-off tolerance"), default=0, max_digits=20, decimal_places=4
    )
    variance_value_limit = models.DecimalField(
        _("variance limit"), default=0, max_digits=20, decimal_places=4
    )
    budget_tolerance_pct = models.DecimalField(
        _("budget tolerance %"), default=0, max_digits=7, decimal_places=3
    )
    grace_days = models.PositiveIntegerField(_("grace days"), default=0)
    auto_close_enabled = models.BooleanField(_("automatic close"), default=True)
    # The sweep also closes line dimensions (收货关闭 …) whose own rules pass (never a line's
    # last one); off by default: an installation opts in per type or unit.
    auto_close_dimensions = models.BooleanField(_("close dimensions by rule"), default=False)
    # SAP's "delivery completed" is reset by a return: a return on a line closed for receiving
    # (or shipping) reopens that dimension, audited; off: the return is quarantined instead.
    return_reopens_dimension = models.BooleanField(
        _("a return reopens receiving/shipping"), default=True
    )
    direct_close_needs_approval = models.BooleanField(
        _("direct close needs approval"), default=False
    )
    archive_after_days = models.PositiveIntegerField(
        _("archive after days"),
        null=True,
        blank=True,
        default=365,
        help_text="closed documents are archived (最终结案, final) this many days after their "
        "close date; empty = never archived",
    )
    rule_settings = models.JSONField(
        _("rule settings"),
        default=dict,
        blank=True,
        help_text='per rule code: {"enabled": false} or {"severity": "warning"}',
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("close policy")
        verbose_name_plural = _("close policies")
        constraints = [
            models.UniqueConstraint(fields=["doc_type", "org_unit"], name="policy_type_org_uniq"),
            models.UniqueConstraint(
                fields=["doc_type"],
                condition=models.Q(org_unit__isnull=True),
                name="policy_type_default_uniq",
            ),
        ]

    def __str__(self) -> str:
        scope = self.org_unit.code if self.org_unit_id and self.org_unit else "*"
        return f"{self.doc_type} @ {scope}"


class ReasonAction(models.TextChoices):
    CLOSE = "close", pgettext_lazy("close action", "close")
    REOPEN = "reopen", pgettext_lazy("close action", "reopen")


class ReasonCode(models.Model):
    """A reason for a close or reopen: of the group (company empty: every company) or of one
    company, where a code equal to a group one overrides it (its names and active flag)."""

    code = models.CharField(_("code"), max_length=40)
    company = models.ForeignKey(
        "core.Company",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("company"),
        help_text=_("empty = the whole group (every company)"),
    )
    action = models.CharField(max_length=10, choices=ReasonAction.choices)
    label_zh = models.CharField("名称 (中文)", max_length=100)
    label_en = models.CharField("name (English)", max_length=100)
    active = models.BooleanField(default=True)
    system = models.BooleanField(default=False, help_text="used by the system, not chosen by users")

    class Meta:
        verbose_name = _("reason code")
        verbose_name_plural = _("reason codes")
        ordering = ["action", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                condition=Q(company__isnull=True),
                name="reasoncode_group_code_uniq",
            ),
            models.UniqueConstraint(
                fields=["company", "code"], name="reasoncode_company_code_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.label_zh} / {self.label_en}"


class SweepRun(models.Model):
    """What one automatic-close sweep did (or, dry run, would do)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    doc_type = models.CharField(max_length=20, blank=True)
    dry_run = models.BooleanField(default=False)
    examined = models.PositiveIntegerField(default=0)
    closed = models.PositiveIntegerField(default=0)
    lines_closed = models.PositiveIntegerField(default=0)
    exception_queue = models.PositiveIntegerField(default=0)
    warning_only = models.PositiveIntegerField(default=0)
    blocked = models.PositiveIntegerField(default=0)
    not_due = models.PositiveIntegerField(default=0, help_text="passing but inside grace days")
    policy_off = models.PositiveIntegerField(default=0)
    rule_failures = models.JSONField(default=dict)
    exception_sample = models.JSONField(default=list)

    class Meta:
        verbose_name = _("sweep run")
        verbose_name_plural = _("sweep runs")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"sweep {self.started_at:%Y-%m-%d %H:%M} {self.doc_type or 'all'}"


class ArchiveRun(models.Model):
    """What one archive run (归档) did (or, dry run, would do); unfinished = interrupted."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    doc_type = models.CharField(max_length=20, blank=True)
    dry_run = models.BooleanField(default=False)
    actor_name = models.CharField(_("actor"), max_length=150)
    archived = models.PositiveIntegerField(default=0)
    lines_archived = models.PositiveIntegerField(default=0)
    retention_off = models.PositiveIntegerField(
        default=0, help_text="closed documents under policies without retention"
    )
    per_policy = models.JSONField(default=list)

    class Meta:
        verbose_name = _("archive run")
        verbose_name_plural = _("archive runs")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"archive {self.started_at:%Y-%m-%d %H:%M} {self.doc_type or 'all'}"


class SavedQueueFilter(models.Model):
    """A user's named filter of the work queue (常用筛选): the page's query string."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_queue_filters"
    )
    doc_type = models.CharField(max_length=20, choices=DocType.choices)
    name = models.CharField(_("name"), max_length=60)
    query = models.CharField(_("query"), max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "doc_type", "name"], name="saved_queue_filter_name_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.doc_type} · {self.name}"


class DimensionCloseKind(models.TextChoices):
    AUTO = "auto", _("closed by rule")
    MANUAL = "manual", _("closed by hand")


class LineDimensionClose(models.Model):
    """One close dimension (关闭维度: receiving, invoicing, payment …) closed on a line that is
    still open as a whole. Sparse: a line without rows is open in every dimension, and a closed
    line counts as closed in every dimension (its rows stay, so a reopen of the line restores
    the dimensions that were closed before it). Written only by `closing.transitions`."""

    document = models.ForeignKey(
        "documents.Document", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    line = models.ForeignKey(
        "documents.Line", on_delete=models.CASCADE, related_name="dimension_closes"
    )
    dimension = models.CharField(_("dimension"), max_length=20)
    kind = models.CharField(max_length=10, choices=DimensionCloseKind.choices)
    reason = models.CharField(_("reason"), max_length=40)
    remark = models.TextField(_("remark"), blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    closed_at = models.DateTimeField()
    # What this close took off the commitments (on order / reserved): the line's open
    # quantity at the close, for the dimensions that release one; given back by the reopen.
    released_qty = models.DecimalField(
        _("released qty"), max_digits=20, decimal_places=4, default=0
    )

    class Meta:
        verbose_name = _("line dimension close")
        verbose_name_plural = _("line dimension closes")
        constraints = [
            models.UniqueConstraint(fields=["line", "dimension"], name="line_dimension_close_uniq")
        ]
        indexes = [
            models.Index(fields=["document", "dimension"], name="line_dimension_document_idx")
        ]

    def __str__(self) -> str:
        return f"{self.line_id} {self.dimension}"
