"""Request and response shapes. Money and quantities travel as decimal strings, never floats;
times are ISO 8601 with their offset.

Every request body derives from `In`: it must be a JSON object, and no string in it, at any
depth, may hold a NUL character. Numbers are written with the ASCII digits 0-9 and must fit the
database column they end up in, products and sums included (a line's quantity × price is its
amount); dates lie between 1900 and 2999. Each refusal is a 422 naming the field."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from ninja import Schema
from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError, core_schema

from closeout.closing.models import ClosePolicy
from closeout.closing.selectors import QueueFilterIn
from closeout.core.inputs import (
    Column,
    date_problem,
    decimal_problem,
    fit_problem,
    refuse_bad_json,
)
from closeout.core.money import round_amount
from closeout.documents.events_bulk import MAX_BULK_ITEMS
from closeout.documents.services import (
    AMOUNT_COLUMN,
    COMPANY_TOTAL_COLUMN,
    PRICE_COLUMN,
    QTY_COLUMN,
    RATE_COLUMN,
    TOTAL_COLUMN,
)

Code = Annotated[str, StringConstraints(min_length=1, max_length=60, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=4000)]

MAX_EVENTS = 10_000
LINE_NO_MAX = 1_000_000


@dataclass(frozen=True)
class DecimalText:
    """Marks a `str` field as a decimal number written as a JSON string ("12.5", "0.0001")
    that fits `column`: `Annotated[str, DecimalText(column)]`. The string is passed on
    stripped; OpenAPI shows the pattern of the column."""

    column: Column
    signed: bool = False

    def check(self, value: str) -> str:
        text = value.strip()
        problem = decimal_problem(text, self.column)
        if not problem and not self.signed and text.startswith("-"):
            problem = "must not be negative"
        if problem:
            raise PydanticCustomError(
                "decimal", "'{value}' {problem}", {"value": text[:40], "problem": problem}
            )
        return text

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "pattern": self.column.pattern(signed=self.signed)}


def _policy_column(name: str) -> Column:
    return Column.of(ClosePolicy._meta.get_field(name))  # type: ignore[arg-type]


Quantity = Annotated[str, DecimalText(QTY_COLUMN)]
SignedQuantity = Annotated[str, DecimalText(QTY_COLUMN, signed=True)]
Amount = Annotated[str, DecimalText(AMOUNT_COLUMN)]
UnitPrice = Annotated[str, DecimalText(PRICE_COLUMN)]
ExchangeRate = Annotated[str, DecimalText(RATE_COLUMN)]
# Every percentage of a policy is numeric(7, 3), every amount numeric(20, 4).
PolicyPercent = Annotated[str, DecimalText(_policy_column("under_qty_pct"))]
PolicyAmount = Annotated[str, DecimalText(_policy_column("amount_tolerance_abs"))]


def _day(value: date) -> date:
    problem = date_problem(value)
    if problem:
        raise PydanticCustomError("date_range", "{problem}", {"problem": problem})
    return value


def _moment(value: datetime) -> datetime:
    _day(value.date())
    return value


# A calendar date, and an instant, between 1900 and 2999.
Day = Annotated[date, AfterValidator(_day)]
Moment = Annotated[datetime, AfterValidator(_moment)]
LineNo = Annotated[int, Field(ge=1, le=LINE_NO_MAX)]
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _filter_checked(value: dict[str, Any]) -> dict[str, Any]:
    QueueFilterIn.model_validate(value)  # its errors name the key: `filter.min_age_days`
    return value


# A saved queue filter: checked by the one schema the pages, the commands and the batches
# use (closing.selectors.QueueFilterIn), passed on as it was sent.
QueueFilterData = Annotated[
    dict[str, Any],
    AfterValidator(_filter_checked),
    WithJsonSchema(QueueFilterIn.model_json_schema()),
]


def refusal(model: str, loc: tuple[str | int, ...], message: str) -> ValidationError:
    """A validation error at `loc` inside a model (raised from its model validators)."""
    error = PydanticCustomError("invalid", "{message}", {"message": message})
    return ValidationError.from_exception_data(
        model, [InitErrorDetails(type=error, loc=loc, input=None)]
    )


class In(Schema):
    """Base of every request body: a JSON object without NUL characters (see the module).

    Replaces ninja's own root validator (same name), which reads any object through its
    attributes: a list such as `[null, null]` would pass as a body whose fields all keep
    their defaults."""

    # Fields whose items another model checks one by one (EventsIn.events).
    unchecked: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(
        cls, values: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        return handler(refuse_bad_json(cls.__name__, values, unchecked=cls.unchecked))


def dec(value: Decimal | int | float | None) -> str | None:
    """A stored decimal as its string, trailing zeros kept as stored."""
    if value is None:
        return None
    return str(value if isinstance(value, Decimal) else Decimal(str(value)))


class Error(Schema):
    code: str
    message: str
    details: dict[str, Any]


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


# --- batches ----------------------------------------------------------------------------------


class BatchIn(In):
    action: Literal["close", "reopen", "request", "approve", "reject"]
    doc_type: Annotated[str, StringConstraints(max_length=20)] = ""
    numbers: list[Code] | None = Field(default=None, max_length=100_000)
    filter: QueueFilterData | None = None
    request_ids: list[RecordId] | None = Field(default=None, max_length=100_000)
    reason: Annotated[str, StringConstraints(max_length=40)] = ""
    remark: Text = ""
    close_date: Day | None = None
    comment: Text = ""
    # A close batch of one close dimension (关闭维度), e.g. "receiving".
    dimension: Annotated[str, StringConstraints(max_length=20)] = ""


class StartIn(In):
    workers: int = Field(default=2, ge=1, le=16)


class UndoIn(In):
    """The undo of a batch (批量撤销): the reopen reason and remark of its reopens."""

    reason: Annotated[str, StringConstraints(max_length=40)] = "wrong_close"
    remark: Text = ""


class BatchOut(Schema):
    id: int
    action: str
    doc_type: str
    state: str
    selection: dict[str, Any]
    total: int
    processed: int
    succeeded: int
    failed: int
    skipped: int
    predicted: dict[str, Any]
    predicted_released_value: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    # Why the run failed (state failed: `POST .../resume` finishes it), or the error it is
    # retrying after; empty when all went well.
    error: str = ""
    # Worker tasks recorded but not sent yet, and why (the broker did not answer): sent when
    # it answers again.
    send_pending: int = 0
    send_error: str = ""
    # An undo job: the batch it undoes; any batch: the undo job that undoes it.
    undoes: int | None = None
    undone_by: int | None = None


class BatchItemOut(Schema):
    id: int
    label: str
    document: str | None
    request_id: int | None
    state: str
    predicted: str
    predicted_message: str
    outcome: str
    message: str
    processed_at: datetime | None


class BatchItemPage(Schema):
    items: list[BatchItemOut]
    next_cursor: str | None


class SweepIn(In):
    doc_type: Annotated[str, StringConstraints(max_length=20)] = ""


class SweepOut(Schema):
    dry_run: bool
    doc_type: str
    examined: int
    would_close: int
    lines: int
    exception_queue: int
    warning_only: int
    blocked: int
    not_due: int
    policy_off: int
    rule_failures: dict[str, int]
    exception_sample: list[str]


# --- audit ------------------------------------------------------------------------------------


class AuditEventOut(Schema):
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    data: dict[str, Any]
    reason: str
    hash: str


class AuditVerifyOut(Schema):
    intact: bool
    checked: int
    head_hash: str
    problem: str
    first_bad_seq: int | None
    # Checkpoints of the head written outside the database that the chain was checked against.
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None


# --- configuration ----------------------------------------------------------------------------


class PolicyIn(In):
    org_unit: Annotated[str, StringConstraints(max_length=40)] = ""
    under_qty_pct: PolicyPercent | None = None
    over_qty_pct: PolicyPercent | None = None
    match_qty_pct: PolicyPercent | None = None
    amount_tolerance_abs: PolicyAmount | None = None
    amount_tolerance_pct: PolicyPercent | None = None
    write_off_amount: PolicyAmount | None = None
    variance_value_limit: PolicyAmount | None = None
    budget_tolerance_pct: PolicyPercent | None = None
    grace_days: int | None = Field(default=None, ge=0, le=3650)
    auto_close_enabled: bool | None = None
    return_reopens_dimension: bool | None = None
    auto_close_dimensions: bool | None = None
    direct_close_needs_approval: bool | None = None
    rule_settings: dict[str, dict[str, Any]] | None = None
    # Days after the close date until the archive (归档); an explicit null means never.
    archive_after_days: int | None = Field(default=None, ge=0, le=36500)


class PolicyOut(Schema):
    doc_type: str
    org_unit: str | None
    under_qty_pct: str
    over_qty_pct: str
    match_qty_pct: str
    amount_tolerance_abs: str
    amount_tolerance_pct: str
    write_off_amount: str
    variance_value_limit: str
    budget_tolerance_pct: str
    grace_days: int
    auto_close_enabled: bool
    direct_close_needs_approval: bool
    rule_settings: dict[str, Any]
    archive_after_days: int | None


class WebhookIn(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    events: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] = []
    secret: Annotated[str, StringConstraints(max_length=200)] = ""
    # A company code: the endpoint receives that company's events only; empty: the group's.
    company: Annotated[str, StringConstraints(max_length=40)] = ""


class WebhookOut(Schema):
    id: int
    name: str
    company: str | None = None
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str


class TokenIn(In):
    name: Annotated[str, StringConstraints(max_length=100)] = ""
    days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str


# --- reports, diagnostics, imports, archive --------------------------------------------------


class KpiTableOut(Schema):
    key: str
    title: str
    headers: list[str]
    # Cells: text, whole numbers, ratios and days as numbers, money as decimal strings.
    rows: list[list[Any]]


class KpiReportOut(Schema):
    date_from: date | None
    date_to: date | None
    doc_type: str
    org_unit: str
    tables: list[KpiTableOut]


class GroupCompanyOut(Schema):
    code: str
    name: str
    base_currency: str
    documents: int
    open_documents: int
    # In the company's base currency.
    total: str
    released: str
    # 1 base currency = rate group currency; null when the rate table lacks it (the company
    # is then left out of the group totals, and its pair is in rates_missing).
    rate: str | None
    group_total: str | None
    group_released: str | None


class GroupReportOut(Schema):
    """The group view (集团汇总): per company the caller may see in reports, totals in its base
    currency and converted to `currency` at rate table `rates` on `as_of`."""

    currency: str
    rates: str
    as_of: date
    companies: list[GroupCompanyOut]
    total: str
    released: str
    rates_used: list[str]
    rates_missing: list[str]


class DiagnosticCheckOut(Schema):
    code: str
    label: str
    what_next: str
    level: str
    columns: list[str]
    count: int | None


class DiagnosticsRunIn(In):
    # Days after which a reopened, not re-closed document counts (default: the setting).
    stale_days: int | None = Field(default=None, ge=0, le=36_500)


class DiagnosticRunOut(Schema):
    id: int
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int
    trigger: str
    run_by: str | None
    counts: dict[str, int]
    problems: int


class DiagnosticsOut(Schema):
    last_run: DiagnosticRunOut | None
    checks: list[DiagnosticCheckOut]


class DiagnosticRowsPage(Schema):
    check: str
    columns: list[str]
    # One dict per offending row, keyed by the column keys; measures as decimal strings.
    items: list[dict[str, Any]]
    next_cursor: str | None


class VerificationProblemOut(Schema):
    check: str
    document: str
    line: int | None
    message: str


class VerificationOut(Schema):
    id: int
    batch: int
    created_at: datetime
    run_by: str | None
    passed: bool
    documents_checked: int
    lines_checked: int
    items_checked: int
    chain_intact: bool
    chain_problem: str
    problem_count: int
    problems: list[VerificationProblemOut]


class ImportRowOut(Schema):
    row: int
    status: Literal["ok", "error"]
    column: str
    message: str
    outcome: str
    document: str


class ImportOut(Schema):
    id: int
    file_name: str
    file_format: str
    encoding: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    total_rows: int
    valid_rows: int
    error_rows: int
    batch: int | None
    executed_at: datetime | None
    rows: list[ImportRowOut]


class PackVerifyOut(Schema):
    intact: bool
    period: str
    files_checked: int
    events_checked: int
    live_checked: bool
    problems: list[str]
    kinds: list[str]


class ArchiveRunOut(Schema):
    id: int
    started_at: datetime
    finished_at: datetime | None
    doc_type: str
    dry_run: bool
    actor: str
    archived: int
    lines_archived: int
    retention_off: int
    per_policy: list[Any]
