"""Business documents, their lines and the business events that move their progress measures."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from closeout.core.doctypes import DocType as DocType  # the one list, re-exported
from closeout.core.doctypes import doc_type_label_lazy
from closeout.core.errors import Bilingual, code_words, document_words


def doc_type_words(doc_type: str) -> Bilingual:
    """A document type in a message: its code in English, its name in Chinese."""
    return code_words(doc_type, doc_type_label_lazy(doc_type))


class CloseState(models.TextChoices):
    OPEN = "open", _("open")
    CLOSE_PENDING = "close_pending", _("close pending approval")
    CLOSED = "closed", pgettext_lazy("close state", "closed")
    REOPEN_PENDING = "reopen_pending", _("reopen pending approval")
    ON_HOLD = "on_hold", _("on hold")
    ARCHIVED = "archived", _("archived")


class CloseKind(models.TextChoices):
    AUTO = "auto", _("automatic close")
    MANUAL = "manual", _("manual close")


# Document states that wait for someone's decision; few documents are in them at any time.
AWAITING_DECISION = (CloseState.ON_HOLD, CloseState.CLOSE_PENDING, CloseState.REOPEN_PENDING)

# Line states that still take part in a close: not yet closed.
LINE_STATES_NOT_CLOSED = (CloseState.OPEN, CloseState.ON_HOLD, CloseState.CLOSE_PENDING)


class Document(models.Model):
    doc_type = models.CharField(_("type"), max_length=20, choices=DocType.choices)
    number = models.CharField(_("number"), max_length=60)
    org_unit = models.ForeignKey("core.OrgUnit", on_delete=models.PROTECT, related_name="+")
    # The company of the org unit (its nearest company ancestor), set when the document is
    # created: numbers are unique per company and type.
    company = models.ForeignKey(
        "core.Company", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Indexed by document_partner_idx (partner first).
    partner = models.ForeignKey(
        "core.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    document_date = models.DateField(_("document date"))
    expected_date = models.DateField(_("expected date"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    exchange_rate = models.DecimalField(_("rate"), max_digits=18, decimal_places=8, default=1)
    total_amount = models.DecimalField(_("total"), max_digits=20, decimal_places=4, default=0)
    total_amount_company = models.DecimalField(
        _("total (company)"), max_digits=20, decimal_places=4, default=0
    )
    source_system = models.CharField(_("source"), max_length=40, default="closeout")
    external_id = models.CharField(_("external id"), max_length=100, blank=True)

    close_state = models.CharField(
        _("close state"), max_length=20, choices=CloseState.choices, default=CloseState.OPEN
    )
    close_kind = models.CharField(max_length=10, choices=CloseKind.choices, blank=True)
    close_reason = models.CharField(_("close reason"), max_length=40, blank=True)
    close_remark = models.TextField(_("remark"), blank=True)
    close_date = models.DateField(_("close date"), null=True, blank=True)
    # No index: nothing looks documents up by who closed them, and every close writes it.
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    # Counts close actions on this document; lines remember the one that closed them, so a
    # reopen restores exactly what the last close changed.
    close_seq = models.PositiveIntegerField(default=0)
    released_value = models.DecimalField(
        _("released value"), max_digits=20, decimal_places=4, default=0
    )
    released_value_company = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    hold_reason = models.TextField(_("hold reason"), blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    # The last reopen: the grace days before an automatic close count from the later of this
    # and the last activity, so a reopen gives people time to act (closing.rules.grace_clock).
    reopened_at = models.DateTimeField(_("reopened at"), null=True, blank=True)
    accepted_on = models.DateField(_("accepted on"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)
    # Derived from close_state: the few documents waiting for a decision (held, or a close or
    # reopen waiting for approval). Only this flag is indexed (document_awaiting_idx), never the
    # state itself, so a close (open → closed, flag false → false) changes no indexed column and
    # the header row is updated heap-only (HOT), writing none of the document indexes.
    awaiting_decision = models.GeneratedField(
        expression=models.ExpressionWrapper(
            Q(close_state__in=AWAITING_DECISION),
            output_field=models.BooleanField(),
        ),
        output_field=models.BooleanField(),
        db_persist=True,
    )

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        constraints = [
            models.UniqueConstraint(
                fields=["company", "doc_type", "number"], name="document_company_number_uniq"
            ),
            models.UniqueConstraint(
                fields=["source_system", "external_id"],
                condition=~Q(external_id=""),
                name="document_source_external_uniq",
            ),
        ]
        indexes = [
            # No document index holds close_state or a column a close writes (see
            # awaiting_decision): the queue pages newest first through (doc_type, id) and
            # tests the state on the row; the rare waiting states have their own small index.
            models.Index(fields=["doc_type", "id"], name="document_queue_idx"),
            models.Index(
                fields=["doc_type", "id"],
                name="document_awaiting_idx",
                condition=models.Q(awaiting_decision=True),
            ),
            models.Index(fields=["partner", "doc_type"], name="document_partner_idx"),
            # Number prefix search (LIKE 'X%') on PostgreSQL whatever the collation.
            models.Index(
                fields=["doc_type", "number"],
                name="document_number_prefix_idx",
                opclasses=["varchar_pattern_ops", "varchar_pattern_ops"],
            ),
            # The work queue's sortable columns, keyset-paged by id.
            models.Index(fields=["doc_type", "document_date", "id"], name="document_date_idx"),
            models.Index(
                fields=["doc_type", "total_amount_company", "id"], name="document_amount_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_doc_type_display()} {self.number}"

    @property
    def label(self) -> str:
        return f"{self.doc_type} {self.number}"

    @property
    def in_words(self) -> Bilingual:
        """The document in a message: "purchase_order PO-1" in English, "采购订单 PO-1" in
        Chinese."""
        return document_words(self.doc_type, self.number, doc_type_label_lazy(self.doc_type))


class Line(models.Model):
    # Indexes cost every close (each line UPDATE writes an entry in each): document_id and
    # item_id are served by the composite indexes below, closed_by_id needs none.
    document = models.ForeignKey(
        Document, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    line_no = models.PositiveIntegerField(pgettext_lazy("line number", "line"))
    item = models.ForeignKey(
        "core.Item",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    unit = models.CharField(_("unit"), max_length=20, default="EA")
    unit_price = models.DecimalField(_("unit price"), max_digits=20, decimal_places=6, default=0)
    # planned_qty: ordered quantity, book quantity (stock count) or number of tasks (project stage)
    planned_qty = models.DecimalField(_("planned qty"), max_digits=20, decimal_places=4, default=0)
    # planned_amount: order value, source-order amount (receivable/payable) or budget (project)
    planned_amount = models.DecimalField(
        _("planned amount"), max_digits=20, decimal_places=4, default=0
    )
    # fulfilled_qty: received, shipped or tasks done, net of returns
    fulfilled_qty = models.DecimalField(
        _("fulfilled qty"), max_digits=20, decimal_places=4, default=0
    )
    returns_open_qty = models.DecimalField(
        _("open returns"), max_digits=20, decimal_places=4, default=0
    )
    invoiced_qty = models.DecimalField(
        _("invoiced qty"), max_digits=20, decimal_places=4, default=0
    )
    invoiced_amount = models.DecimalField(
        _("invoiced amount"), max_digits=20, decimal_places=4, default=0
    )
    settled_amount = models.DecimalField(
        _("settled amount"), max_digits=20, decimal_places=4, default=0
    )
    counted_qty = models.DecimalField(
        _("counted qty"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    adjusted_qty = models.DecimalField(
        _("adjusted qty"), max_digits=20, decimal_places=4, default=0
    )
    actual_cost = models.DecimalField(_("actual cost"), max_digits=20, decimal_places=4, default=0)

    close_state = models.CharField(
        _("close state"), max_length=20, choices=CloseState.choices, default=CloseState.OPEN
    )
    close_kind = models.CharField(max_length=10, choices=CloseKind.choices, blank=True)
    close_reason = models.CharField(max_length=40, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_in = models.PositiveIntegerField(null=True, blank=True)
    released_qty = models.DecimalField(
        _("released qty"), max_digits=20, decimal_places=4, default=0
    )
    released_value = models.DecimalField(
        _("released value"), max_digits=20, decimal_places=4, default=0
    )
    released_value_company = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    hold_reason = models.TextField(blank=True)
    # Derived from close_state; only this flag is indexed (line_held_pending_idx), not the state
    # itself, so a close (open → closed) changes no indexed column and stays a heap-only update.
    on_hold_or_pending = models.GeneratedField(
        expression=models.ExpressionWrapper(
            Q(close_state__in=[CloseState.ON_HOLD, CloseState.CLOSE_PENDING]),
            output_field=models.BooleanField(),
        ),
        output_field=models.BooleanField(),
        db_persist=True,
    )

    class Meta:
        verbose_name = pgettext_lazy("model", "line")
        verbose_name_plural = pgettext_lazy("model", "lines")
        ordering = ["document_id", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["document", "line_no"], name="line_document_no_uniq")
        ]
        # No index holds close_state (see on_hold_or_pending); the document's lines are found
        # through line_document_no_uniq.
        indexes = [
            models.Index(fields=["item"], name="line_item_idx"),
            # Few lines are held or waiting for approval; the no_line_on_hold rule looks them up
            # as one small set instead of scanning every line.
            models.Index(
                fields=["document"],
                name="line_held_pending_idx",
                condition=models.Q(on_hold_or_pending=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.line_no}"


class EventKind(models.TextChoices):
    RECEIPT = "receipt", _("receipt")
    SHIPMENT = "shipment", _("shipment")
    RETURN = "return", _("return")
    INVOICE = "invoice", _("invoice")
    CREDIT_NOTE = "credit_note", _("credit note")
    PAYMENT = "payment", _("payment")
    COUNT_RESULT = "count_result", _("count result")
    STOCK_ADJUSTMENT = "stock_adjustment", _("stock adjustment")
    TASK_COMPLETION = "task_completion", _("task completion")
    COST_POSTING = "cost_posting", _("cost posting")
    ACCEPTANCE = "acceptance", _("acceptance")


class EventStatus(models.TextChoices):
    APPLIED = "applied", _("applied")
    PENDING = "pending", pgettext_lazy("event status", "pending")
    QUARANTINED = "quarantined", _("quarantined")


class BusinessEvent(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="events")
    line = models.ForeignKey(
        Line, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(
        pgettext_lazy("business event", "kind"), max_length=20, choices=EventKind.choices
    )
    source_system = models.CharField(max_length=40, default="closeout")
    external_id = models.CharField(_("external id"), max_length=100)
    quantity = models.DecimalField(_("quantity"), max_digits=20, decimal_places=4, default=0)
    amount = models.DecimalField(_("amount"), max_digits=20, decimal_places=4, default=0)
    occurred_at = models.DateTimeField(_("occurred at"))
    status = models.CharField(max_length=12, choices=EventStatus.choices)
    quarantine_reason = models.TextField(_("quarantine reason"), blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("business event")
        verbose_name_plural = _("business events")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_system", "external_id"], name="event_source_external_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["document", "status"], name="event_document_status_idx"),
            # The events_settled rule and the "has quarantined events" filter look up the few
            # unsettled events of all documents at once.
            models.Index(
                fields=["document"],
                name="event_unsettled_idx",
                condition=models.Q(status__in=["pending", "quarantined"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_id}"
