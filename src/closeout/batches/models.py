"""Batch jobs (批量处理, S18): many documents or requests, one action, previewed first, then
run in chunks with progress, per-item results, cancel and resume."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class BatchAction(models.TextChoices):
    CLOSE = "close", pgettext_lazy("batch action", "close")
    REOPEN = "reopen", pgettext_lazy("batch action", "reopen")
    REQUEST = "request", pgettext_lazy("batch action", "request close")
    APPROVE = "approve", pgettext_lazy("batch action", "approve")
    REJECT = "reject", pgettext_lazy("batch action", "reject")
    # Rows of an uploaded file (导入结案指令): each item carries its own action and parameters.
    IMPORT = "import", pgettext_lazy("batch action", "import")
    # Reopens what another batch closed, through the reopen route (batches.undo).
    UNDO = "undo", _("undo")


class BatchState(models.TextChoices):
    DRAFT = "draft", _("draft")
    PREVIEWED = "previewed", _("previewed")
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    CANCELLED = "cancelled", _("cancelled")
    DONE = "done", _("done")
    # Stopped by an error its retries could not overcome (a lost database connection, a bug):
    # `error` says why; `closeout batch resume` finishes the items still pending.
    FAILED = "failed", _("failed")


class BatchJob(models.Model):
    action = models.CharField(_("action"), max_length=10, choices=BatchAction.choices)
    doc_type = models.CharField(_("type"), max_length=20, blank=True)
    selection = models.JSONField(_("selection"), default=dict)
    reason_code = models.CharField(max_length=40, blank=True)
    remark = models.TextField(blank=True)
    close_date = models.DateField(null=True, blank=True)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=10, choices=BatchState.choices, default=BatchState.DRAFT)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    predicted = models.JSONField(_("preview counts"), default=dict)
    predicted_released_value = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Why the run failed, or the error it is retrying after (empty when all went well).
    error = models.TextField(_("error"), blank=True)
    # `error` (English: the API, the CLI, the logs) as a message record, so the batch page
    # shows it in the reader's language (batches.messages.stored_text); empty with it.
    error_message = models.JSONField(_("error message"), default=dict, blank=True)
    error_at = models.DateTimeField(null=True, blank=True)
    # The outbox of the run: worker tasks recorded, in the transaction that started or resumed
    # the job, as still to be sent to the broker; sent after commit. While the broker does not
    # answer they stay here with `send_error`, and the scheduler, a worker's start or
    # `batch resume` sends them (batches.services.batch_dispatch_pending).
    send_pending = models.PositiveSmallIntegerField(_("tasks to send"), default=0)
    send_error = models.TextField(_("send error"), blank=True)
    send_error_message = models.JSONField(_("send error message"), default=dict, blank=True)
    send_attempted_at = models.DateTimeField(null=True, blank=True)
    # An undo job (action undo): the batch whose closes it reopens (batches.undo).
    undoes = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="undone_by",
        verbose_name=_("undoes batch"),
    )

    class Meta:
        verbose_name = _("batch job")
        verbose_name_plural = _("batch jobs")
        ordering = ["-created_at"]
        indexes = [
            # The few jobs whose worker tasks are still to be sent, found by the scheduler.
            models.Index(
                fields=["id"], name="batch_job_unsent_idx", condition=models.Q(send_pending__gt=0)
            )
        ]

    def __str__(self) -> str:
        return f"batch #{self.pk} {self.action} {self.processed}/{self.total}"

    @property
    def rate(self) -> float:
        """Items per second since the run started."""
        if not self.started_at or not self.processed:
            return 0.0
        end = self.finished_at or timezone.now()
        seconds = max((end - self.started_at).total_seconds(), 0.001)
        return self.processed / seconds

    @property
    def eta(self) -> timedelta | None:
        if self.state != BatchState.RUNNING or not self.rate:
            return None
        return timedelta(seconds=(self.total - self.processed) / self.rate)

    @property
    def percent(self) -> int:
        return int(100 * self.processed / self.total) if self.total else 100


class ItemState(models.TextChoices):
    PENDING = "pending", pgettext_lazy("batch item", "pending")
    DONE = "done", pgettext_lazy("batch item", "done")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")


class BatchItem(models.Model):
    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="items")
    document = models.ForeignKey(
        "documents.Document", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(
        "approvals.CloseRequest",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    label = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=ItemState.choices, default=ItemState.PENDING)
    predicted = models.CharField(max_length=20, blank=True)
    predicted_message = models.TextField(blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(_("worker"), max_length=100, blank=True)
    # An imported row: its row number in the file and its own parameters (action, line_nos,
    # reason_code, remark, close_date), which take the place of the job's.
    row_no = models.PositiveIntegerField(_("row"), null=True, blank=True)
    params = models.JSONField(_("row parameters"), default=dict, blank=True)

    class Meta:
        verbose_name = _("batch item")
        verbose_name_plural = _("batch items")
        ordering = ["job", "id"]
        indexes = [models.Index(fields=["job", "state", "id"], name="batch_item_claim_idx")]
        constraints = [
            # An import may name one document in several rows (different lines); its rows are
            # unique by row number instead.
            models.UniqueConstraint(
                fields=["job", "document"],
                condition=models.Q(row_no__isnull=True),
                name="batch_item_document_uniq",
            ),
            models.UniqueConstraint(fields=["job", "request"], name="batch_item_request_uniq"),
            models.UniqueConstraint(
                fields=["job", "row_no"],
                condition=models.Q(row_no__isnull=False),
                name="batch_item_row_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.label} {self.state}"


class ImportFile(models.Model):
    """One uploaded file of close instructions (导入结案指令): what was uploaded, by whom, how
    it read, and the validation report per row. Executing it creates one batch job."""

    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField("SHA-256", max_length=64)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    file_format = models.CharField(_("format"), max_length=10)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    valid_rows = models.PositiveIntegerField(_("valid rows"), default=0)
    error_rows = models.PositiveIntegerField(_("rows with errors"), default=0)
    # {"headers": [...as uploaded], "columns": [column key per header], "rows": [
    #   {"row": n, "cells": [...], "errors": [[column key, message], ...], "note": "...",
    #    "document": id, "label": "...", "params": {...}}, ...]}
    report = models.JSONField(_("report"), default=dict)
    job = models.OneToOneField(
        BatchJob,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="import_file",
        verbose_name=_("batch job"),
    )
    executed_at = models.DateTimeField(_("executed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("import file")
        verbose_name_plural = _("import files")
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["uploaded_by", "-uploaded_at"], name="import_by_user_idx")]

    def __str__(self) -> str:
        return f"import #{self.pk} {self.file_name}"
