"""Domain objects to response schemas (decimals as strings)."""

from typing import Any

from django.utils.functional import Promise

from closeout.api.models import ApiToken
from closeout.api.schemas import (
    ArchiveRunOut,
    BatchItemOut,
    BatchOut,
    ChecklistOut,
    CheckOut,
    DecisionOut,
    DiagnosticRunOut,
    DocumentOut,
    DocumentSummary,
    ImportOut,
    ImportRowOut,
    KpiTableOut,
    LineOut,
    PackVerifyOut,
    PolicyOut,
    RequestOut,
    RiskOut,
    TokenOut,
    VerificationOut,
    VerificationProblemOut,
    WebhookDeliveryOut,
    WebhookOut,
    dec,
)
from closeout.approvals.models import CloseRequest
from closeout.audit.services import to_json_value
from closeout.batches.imports import report_rows
from closeout.batches.models import BatchItem, BatchJob, ImportFile
from closeout.batches.undo import undone_by
from closeout.closing.dimensions import lines_with_dimensions
from closeout.closing.models import ArchiveRun, ClosePolicy
from closeout.closing.selectors import Checklist
from closeout.documents.models import Document, Line
from closeout.notifications.models import WebhookDelivery, WebhookEndpoint
from closeout.reports.archive_verify import PackVerdict
from closeout.reports.diagnostics import decimal_or_none
from closeout.reports.kpi_base import KpiTable
from closeout.reports.models import DiagnosticRun, PostCloseVerification


def s(value: Any) -> str:
    text = dec(value)
    return text if text is not None else "0"


def document_summary(document: Document, verdict: str | None = None) -> DocumentSummary:
    return DocumentSummary(
        id=document.pk,
        doc_type=document.doc_type,
        number=document.number,
        company=document.company.code,
        org_unit=document.org_unit.code,
        partner=document.partner.code if document.partner_id and document.partner else None,
        document_date=document.document_date,
        expected_date=document.expected_date,
        currency=document.currency,
        total_amount=s(document.total_amount),
        close_state=document.close_state,
        version=document.version,
        verdict=verdict,
        last_activity_at=document.last_activity_at,
    )


def line_out(line: Line, dimensions: dict[str, str] | None = None) -> LineOut:
    return LineOut(
        line_no=line.line_no,
        item=line.item.code if line.item_id and line.item else None,
        description=line.description,
        unit=line.unit,
        unit_price=s(line.unit_price),
        planned_qty=s(line.planned_qty),
        planned_amount=s(line.planned_amount),
        fulfilled_qty=s(line.fulfilled_qty),
        returns_open_qty=s(line.returns_open_qty),
        invoiced_qty=s(line.invoiced_qty),
        invoiced_amount=s(line.invoiced_amount),
        settled_amount=s(line.settled_amount),
        counted_qty=dec(line.counted_qty),
        actual_cost=s(line.actual_cost),
        close_state=line.close_state,
        released_qty=s(line.released_qty),
        released_value=s(line.released_value),
        dimensions=dimensions or {},
    )


def checklist_out(checklist: Checklist) -> ChecklistOut:
    return ChecklistOut(
        verdict=checklist.verdict,
        for_auto=checklist.for_auto,
        checks=[
            CheckOut(
                rule=c.rule.code,
                label_zh=c.rule.label_zh,
                label_en=c.rule.label_en,
                severity=str(c.severity),
                passed=c.passed,
                threshold=c.threshold,
                measured=to_json_value(c.measured),
                failing_lines=c.failing_lines,
                hint_en=c.rule.hint_en,
            )
            for c in checklist.checks
        ],
        risks=[RiskOut(**r.as_dict()) for r in checklist.risks],
    )


def document_out(document: Document, checklist: Checklist | None) -> DocumentOut:
    base = document_summary(document, checklist.verdict if checklist else None)
    return DocumentOut(
        **base.model_dump(),
        exchange_rate=s(document.exchange_rate),
        total_amount_company=s(document.total_amount_company),
        source_system=document.source_system,
        external_id=document.external_id,
        close_kind=document.close_kind,
        close_reason=document.close_reason,
        close_remark=document.close_remark,
        close_date=document.close_date,
        closed_by=document.closed_by.get_username() if document.closed_by else None,
        closed_at=document.closed_at,
        released_value=s(document.released_value),
        created_at=document.created_at,
        lines=[
            line_out(line, states)
            for line, states in lines_with_dimensions(
                document, document.lines.select_related("item").order_by("line_no")
            )
        ],
        checklist=checklist_out(checklist) if checklist else None,
    )


def request_out(request: CloseRequest) -> RequestOut:
    return RequestOut(
        id=request.pk,
        action=request.action,
        doc_type=request.document.doc_type,
        number=request.document.number,
        company=request.document.company.code,
        state=request.state,
        reason_code=request.reason_code,
        remark=request.remark,
        close_date=request.close_date,
        line_nos=request.line_nos,
        requester=request.requester.get_username(),
        route=request.route.name if request.route else None,
        current_step=request.current_step,
        steps=to_json_value(request.steps),
        round=request.round,
        exception=request.exception,
        open_value=s(request.open_value),
        submitted_at=request.submitted_at,
        ended_at=request.ended_at,
        last_error=request.last_error,
        decisions=[
            DecisionOut(
                round=d.round,
                step_order=d.step_order,
                step_name=d.step_name,
                decider=d.decider.get_username(),
                decision=d.decision,
                comment=d.comment,
                decided_at=d.decided_at,
            )
            for d in request.decisions.select_related("decider").order_by("round", "step_order")
        ],
    )


def batch_out(job: BatchJob) -> BatchOut:
    return BatchOut(
        id=job.pk,
        action=job.action,
        doc_type=job.doc_type,
        state=job.state,
        selection=to_json_value(job.selection),
        total=job.total,
        processed=job.processed,
        succeeded=job.succeeded,
        failed=job.failed,
        skipped=job.skipped,
        predicted=to_json_value(job.predicted),
        predicted_released_value=s(job.predicted_released_value),
        created_by=job.created_by.get_username(),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested=job.cancel_requested,
        error=job.error,
        send_pending=job.send_pending,
        send_error=job.send_error,
        undoes=job.undoes_id,
        undone_by=getattr(undone_by(job), "pk", None),
    )


def batch_item_out(item: BatchItem) -> BatchItemOut:
    return BatchItemOut(
        id=item.pk,
        label=item.label,
        document=item.document.label if item.document_id and item.document else None,
        request_id=item.request_id,
        state=item.state,
        predicted=item.predicted,
        predicted_message=item.predicted_message,
        outcome=item.outcome,
        message=item.message,
        processed_at=item.processed_at,
    )


def policy_out(policy: ClosePolicy) -> PolicyOut:
    return PolicyOut(
        doc_type=policy.doc_type,
        org_unit=policy.org_unit.code if policy.org_unit else None,
        under_qty_pct=s(policy.under_qty_pct),
        over_qty_pct=s(policy.over_qty_pct),
        match_qty_pct=s(policy.match_qty_pct),
        amount_tolerance_abs=s(policy.amount_tolerance_abs),
        amount_tolerance_pct=s(policy.amount_tolerance_pct),
        write_off_amount=s(policy.write_off_amount),
        variance_value_limit=s(policy.variance_value_limit),
        budget_tolerance_pct=s(policy.budget_tolerance_pct),
        grace_days=policy.grace_days,
        auto_close_enabled=policy.auto_close_enabled,
        direct_close_needs_approval=policy.direct_close_needs_approval,
        rule_settings=policy.rule_settings or {},
        archive_after_days=policy.archive_after_days,
    )


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.pk,
        name=endpoint.name,
        company=endpoint.company.code if endpoint.company is not None else None,
        url=endpoint.url,
        events=list(endpoint.events or []),
        active=endpoint.active,
        created_at=endpoint.created_at,
    )


def webhook_delivery_out(delivery: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=delivery.pk,
        endpoint=delivery.endpoint_id,
        event=delivery.event,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        last_attempt_at=delivery.last_attempt_at,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
    )


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.pk,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


def cell(value: Any) -> Any:
    """A report cell as JSON: decimals as strings, dates ISO, translated labels as text."""
    if isinstance(value, Promise):
        return str(value)
    return to_json_value(value)


def kpi_table_out(table: KpiTable) -> KpiTableOut:
    return KpiTableOut(
        key=table.key,
        title=str(table.title),
        headers=[str(h) for h in table.headers],
        rows=[[cell(v) for v in row] for row in table.rows],
    )


def diagnostic_run_out(run: DiagnosticRun) -> DiagnosticRunOut:
    return DiagnosticRunOut(
        id=run.pk,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        trigger=run.trigger,
        run_by=run.run_by.get_username() if run.run_by is not None else None,
        counts={str(k): int(v) for k, v in run.counts.items()},
        problems=run.problems,
    )


def diagnostic_row_out(row: dict[str, Any], keys: list[str], labels: dict[Any, Any]) -> Any:
    """One offending row keyed by the check's columns; the problem in words."""
    values: dict[str, Any] = {}
    for key in keys:
        value = row.get(key)
        if key == "problem":
            values[key] = str(labels.get(value, value))
        else:
            values[key] = cell(decimal_or_none(value))
    return values


def verification_out(result: PostCloseVerification) -> VerificationOut:
    return VerificationOut(
        id=result.pk,
        batch=result.job_id,
        created_at=result.created_at,
        run_by=result.run_by.get_username() if result.run_by is not None else None,
        passed=result.passed,
        documents_checked=result.documents_checked,
        lines_checked=result.lines_checked,
        items_checked=result.items_checked,
        chain_intact=result.chain_intact,
        chain_problem=result.chain_problem,
        problem_count=result.problem_count,
        problems=[VerificationProblemOut(**p) for p in result.problems],
    )


def import_out(imported: ImportFile) -> ImportOut:
    return ImportOut(
        id=imported.pk,
        file_name=imported.file_name,
        file_format=imported.file_format,
        encoding=imported.encoding,
        size=imported.size,
        sha256=imported.sha256,
        uploaded_by=imported.uploaded_by.get_username(),
        uploaded_at=imported.uploaded_at,
        total_rows=imported.total_rows,
        valid_rows=imported.valid_rows,
        error_rows=imported.error_rows,
        batch=imported.job_id,
        executed_at=imported.executed_at,
        rows=[
            ImportRowOut(
                row=r.row,
                status="ok" if r.ok else "error",
                column=", ".join(r.columns),
                message=r.message,
                outcome=r.outcome,
                document=r.label,
            )
            for r in report_rows(imported)
        ],
    )


def pack_verdict_out(verdict: PackVerdict) -> PackVerifyOut:
    return PackVerifyOut(
        intact=verdict.intact,
        period=verdict.period,
        files_checked=verdict.files_checked,
        events_checked=verdict.events_checked,
        live_checked=verdict.live_checked,
        problems=list(verdict.problems),
        kinds=list(verdict.kinds),
    )


def archive_run_out(run: ArchiveRun) -> ArchiveRunOut:
    return ArchiveRunOut(
        id=run.pk,
        started_at=run.started_at,
        finished_at=run.finished_at,
        doc_type=run.doc_type,
        dry_run=run.dry_run,
        actor=run.actor_name,
        archived=run.archived,
        lines_archived=run.lines_archived,
        retention_off=run.retention_off,
        per_policy=to_json_value(run.per_policy),
    )
