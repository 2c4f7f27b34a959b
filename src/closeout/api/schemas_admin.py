"""API shapes of batches, the audit log, configuration, reports, imports and the archive."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import (
    Field,
    StringConstraints,
)

from closeout.api.schemas_common import (
    Code,
    Day,
    In,
    PolicyAmount,
    PolicyPercent,
    QueueFilterData,
    RecordId,
    Text,
)

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


class WebhookDeliveryOut(Schema):
    id: int
    endpoint: int
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class WebhookDeliveryPage(Schema):
    # Newest first; pass next_cursor back as `cursor` for the older ones.
    items: list[WebhookDeliveryOut]
    next_cursor: str | None


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
