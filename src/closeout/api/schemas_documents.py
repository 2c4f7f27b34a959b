"""API shapes of documents, business events, closes and close requests."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from closeout.api.schemas_common import (
    MAX_EVENTS,
    Amount,
    Code,
    Day,
    ExchangeRate,
    In,
    LineNo,
    Moment,
    Quantity,
    SignedQuantity,
    Text,
    UnitPrice,
    refusal,
)
from closeout.core.inputs import (
    fit_problem,
)
from closeout.core.money import round_amount
from closeout.documents.events_bulk import MAX_BULK_ITEMS
from closeout.documents.services import (
    AMOUNT_COLUMN,
    COMPANY_TOTAL_COLUMN,
    TOTAL_COLUMN,
)

# --- documents -------------------------------------------------------------------------------


class LineIn(In):
    line_no: LineNo
    planned_qty: Quantity
    unit_price: UnitPrice
    # Without it, the amount is planned_qty × unit_price (rounded to the currency).
    planned_amount: Amount | None = None
    item: Annotated[str, StringConstraints(max_length=60)] = ""
    item_name: Annotated[str, StringConstraints(max_length=200)] = ""
    description: Annotated[str, StringConstraints(max_length=200)] = ""
    unit: Annotated[str, StringConstraints(min_length=1, max_length=20)] = "EA"

    def amount(self, currency: str) -> Decimal:
        if self.planned_amount is not None:
            return Decimal(self.planned_amount)
        return round_amount(Decimal(self.planned_qty) * Decimal(self.unit_price), currency)

    @model_validator(mode="after")
    def _amount_fits(self) -> "LineIn":
        if self.planned_amount is None:
            product = Decimal(self.planned_qty) * Decimal(self.unit_price)
            problem = fit_problem(product, AMOUNT_COLUMN, rounded=True)
            if problem:
                raise refusal(
                    type(self).__name__,
                    ("planned_qty",),
                    f"the amount planned_qty × unit_price = {product:f} {problem}",
                )
        return self


class DocumentIn(In):
    org_unit: Code
    document_date: Day
    expected_date: Day | None = None
    partner: Annotated[str, StringConstraints(max_length=40)] = ""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    # Without it: 1 in the company's base currency, else the book rate table's rate of the
    # document date (CLOSEOUT_BOOK_RATE_TABLE); a missing rate is refused.
    exchange_rate: ExchangeRate | None = None
    source_system: Annotated[str, StringConstraints(min_length=1, max_length=40)] = "closeout"
    external_id: Annotated[str, StringConstraints(max_length=100)] = ""
    lines: list[LineIn] = Field(max_length=5000)

    @model_validator(mode="after")
    def _totals_fit(self) -> "DocumentIn":
        """The document stores the sum of its lines, and that sum at the exchange rate."""
        total = sum((line.amount(self.currency) for line in self.lines), Decimal(0))
        problem = fit_problem(total, TOTAL_COLUMN)
        if problem:
            raise refusal(
                type(self).__name__, ("lines",), f"the total of the lines {total:f} {problem}"
            )
        if self.exchange_rate is None:
            return self
        company = total * Decimal(self.exchange_rate)
        problem = fit_problem(company, COMPANY_TOTAL_COLUMN, rounded=True)
        if problem:
            raise refusal(
                type(self).__name__,
                ("exchange_rate",),
                f"the total at the rate, {total:f} × {self.exchange_rate} = {company:f}, {problem}",
            )
        return self


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` written in place (an item schema given in
    `json_schema_extra` cannot refer to definitions of its own)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    return dict(walk(schema))


class DocumentBulkItemIn(DocumentIn):
    doc_type: Code
    number: Code


class DocumentsBulkIn(In):
    """Up to 1,000 documents (see DocumentBulkItemIn); each item is checked on its own and
    answered in request order."""

    unchecked = ("documents",)

    documents: list[Any] = Field(
        min_length=1,
        max_length=MAX_BULK_ITEMS,
        json_schema_extra={"items": _inlined(DocumentBulkItemIn.model_json_schema())},
    )


class LineOut(Schema):
    line_no: int
    item: str | None
    description: str
    unit: str
    unit_price: str
    planned_qty: str
    planned_amount: str
    fulfilled_qty: str
    returns_open_qty: str
    invoiced_qty: str
    invoiced_amount: str
    settled_amount: str
    counted_qty: str | None
    actual_cost: str
    close_state: str
    released_qty: str
    released_value: str
    # Per close dimension of the type (关闭维度: receiving, invoicing …): open or closed.
    dimensions: dict[str, str] = {}


class CheckOut(Schema):
    rule: str
    label_zh: str
    label_en: str
    severity: str
    passed: bool
    threshold: str
    measured: dict[str, Any]
    failing_lines: list[int]
    hint_en: str


class RiskOut(Schema):
    """A risk warning (风险预警, S24) of a manual close: advisory, never part of the verdict."""

    code: str
    status: str  # flagged, normal, thin_history
    message_zh: str
    message_en: str
    action_zh: str
    action_en: str
    measured: dict[str, Any]
    reference: dict[str, Any]
    threshold: str
    lines: list[int]


class ChecklistOut(Schema):
    verdict: str
    for_auto: bool
    checks: list[CheckOut]
    risks: list[RiskOut] = []


class DocumentSummary(Schema):
    id: int
    doc_type: str
    number: str
    # The company code (公司): numbers are unique per company and type.
    company: str
    org_unit: str
    partner: str | None
    document_date: date
    expected_date: date | None
    currency: str
    total_amount: str
    close_state: str
    version: int
    verdict: str | None = None
    last_activity_at: datetime | None


class DocumentOut(DocumentSummary):
    exchange_rate: str
    total_amount_company: str
    source_system: str
    external_id: str
    close_kind: str
    close_reason: str
    close_remark: str
    close_date: date | None
    closed_by: str | None
    closed_at: datetime | None
    released_value: str
    created_at: datetime
    lines: list[LineOut]
    checklist: ChecklistOut | None = None


class DocumentPage(Schema):
    items: list[DocumentSummary]
    next_cursor: str | None


class PartnerIn(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    kind: Literal["supplier", "customer", "both"] = "supplier"
    active: bool = True


class PartnerOut(Schema):
    code: str
    name: str
    kind: str
    active: bool


# --- events ----------------------------------------------------------------------------------


class EventIn(In):
    doc_type: Code
    number: Code
    # The company code; may be left empty unless the number exists in several companies.
    company: Annotated[str, StringConstraints(max_length=40)] = ""
    kind: Code
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    line_no: LineNo | None = None
    # Signed: a stock adjustment below the book quantity is negative.
    quantity: SignedQuantity = "0"
    amount: Amount = "0"
    occurred_at: Moment | None = None
    source_system: Annotated[str, StringConstraints(min_length=1, max_length=40)] = "closeout"
    pending: bool = False
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class EventsIn(In):
    """One or many events; each item is checked on its own (see EventIn for the fields), so one
    bad item is `rejected` with its index and the others still post."""

    unchecked = ("events",)

    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_EVENTS,
        json_schema_extra={"items": EventIn.model_json_schema()},
    )


class EventsBulkIn(In):
    """Up to 1,000 events posted set-based (see EventIn for the fields of each); each item is
    checked on its own and answered in request order."""

    unchecked = ("events",)

    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_BULK_ITEMS,
        json_schema_extra={"items": EventIn.model_json_schema()},
    )


class FieldError(Schema):
    field: str
    message: str


class EventResultOut(Schema):
    index: int
    external_id: str | None
    outcome: Literal["applied", "pending", "duplicate", "quarantined", "rejected"]
    event_id: int | None = None
    reason: str = ""
    # A rejected item: the error's code (e.g. event_conflict: its external id was used with
    # other values, event_refused: it would drive a measure below zero), one entry per field at
    # fault, and the error's details (for a conflict {"fields": {name: {"stored", "sent"}}}).
    code: str = ""
    errors: list[FieldError] = []
    details: dict[str, Any] = {}
    # The outcome in a sentence, in the request's language (zh-hans by default).
    message: str = ""


class EventsOut(Schema):
    counts: dict[str, int]
    results: list[EventResultOut]


class DocumentResultOut(Schema):
    index: int
    doc_type: str | None
    number: str | None
    # The company code of a created or updated document (its org unit's company).
    company: str | None = None
    outcome: Literal["created", "updated", "rejected"]
    version: int | None = None
    reason: str = ""
    # A rejected item: the error's code (e.g. document_locked: it is closed and must be
    # reopened first), the fields at fault and the error's details.
    code: str = ""
    errors: list[FieldError] = []
    details: dict[str, Any] = {}
    # The outcome in a sentence, in the request's language (zh-hans by default).
    message: str = ""


class DocumentsBulkOut(Schema):
    counts: dict[str, int]
    results: list[DocumentResultOut]


# --- close, reopen, requests -----------------------------------------------------------------


class CloseIn(In):
    reason: Code
    remark: Text = ""
    close_date: Day | None = None
    line_nos: list[LineNo] | None = Field(default=None, max_length=5000)


class CloseOut(Schema):
    document: DocumentSummary
    lines_closed: list[int]
    header_closed: bool
    released_value: str


class ReopenRequestIn(In):
    reason: Code
    remark: Text = ""


class DecisionIn(In):
    comment: Text = ""


class WithdrawIn(In):
    reason: Text = ""


class DecisionOut(Schema):
    round: int
    step_order: int
    step_name: str
    decider: str
    decision: str
    comment: str
    decided_at: datetime


class RequestOut(Schema):
    id: int
    action: str
    doc_type: str
    number: str
    company: str
    state: str
    reason_code: str
    remark: str
    close_date: date | None
    line_nos: list[int] | None
    requester: str
    route: str | None
    current_step: int
    steps: list[dict[str, Any]]
    round: int
    exception: bool
    open_value: str
    submitted_at: datetime
    ended_at: datetime | None
    last_error: str
    decisions: list[DecisionOut]
