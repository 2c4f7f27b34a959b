"""The audit log: chain verification and streamed export (CSV or JSON lines)."""

import json
from collections.abc import Iterator
from typing import Any, Literal

from django.db.models import Q
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api.routers._common import CSV, ERRORS, JSON_LINES, caller, download
from closeout.api.schemas import AuditVerifyOut
from closeout.api.selectors import audit_events_iter, audit_row
from closeout.approvals.selectors import audit_scope
from closeout.audit.services import audit_chain_verify
from closeout.core.exports import export_response

router = Router(tags=["audit"])

COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "data",
    "reason",
    "request_id",
    "http_request_id",
    "key_id",
    "prev_hash",
    "hash",
)


@router.get("/verify", response={200: AuditVerifyOut, **ERRORS}, summary="Verify the hash chain")
def audit_verify(request: HttpRequest) -> Any:
    require(caller(request), Perm.AUDIT_VIEW, what="the audit log")
    verdict = audit_chain_verify()
    return AuditVerifyOut(
        intact=verdict.intact,
        checked=verdict.checked,
        head_hash=verdict.head_hash,
        problem=verdict.problem,
        first_bad_seq=verdict.first_bad_seq,
        checkpoints=verdict.checkpoints,
        last_checkpoint_seq=(
            verdict.last_checkpoint.seq if verdict.last_checkpoint is not None else None
        ),
    )


def _csv_rows(scope: Q) -> Iterator[list[Any]]:
    for event in audit_events_iter(scope):
        row = audit_row(event)
        row["data"] = json.dumps(row["data"], ensure_ascii=False, sort_keys=True)
        yield [row[c] for c in COLUMNS]


def _jsonl_lines(scope: Q) -> Iterator[str]:
    for event in audit_events_iter(scope):
        yield json.dumps(audit_row(event), ensure_ascii=False, sort_keys=True) + "\n"


@router.get(
    "/export",
    response={200: None, **ERRORS},
    summary="Export the audit log, streamed (CSV or JSON lines): all of it for a company-wide "
    "auditor, the events about the documents in scope for one over part of the company",
    openapi_extra=download(CSV, JSON_LINES),
)
def audit_export(request: HttpRequest, format: Literal["csv", "jsonl"] = "jsonl") -> Any:
    actor = caller(request)
    require(actor, Perm.AUDIT_VIEW, what="the audit log")
    scope = audit_scope(actor)
    if format == "csv":
        # The one export writer: cells that would start a formula are neutralised.
        return export_response("csv", filename="audit", headers=COLUMNS, rows=_csv_rows(scope))
    response = StreamingHttpResponse(
        _jsonl_lines(scope), content_type="application/x-ndjson; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="audit.jsonl"'
    return response
