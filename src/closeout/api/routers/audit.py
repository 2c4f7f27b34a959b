"""The audit log: chain verification and streamed export (CSV or JSON lines)."""

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api.routers._common import ERRORS, caller
from closeout.api.schemas import AuditVerifyOut
from closeout.api.selectors import audit_events_iter, audit_row
from closeout.audit.services import audit_chain_verify

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


def _csv_lines() -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for event in audit_events_iter():
        row = audit_row(event)
        row["data"] = json.dumps(row["data"], ensure_ascii=False, sort_keys=True)
        writer.writerow([row[c] for c in COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _jsonl_lines() -> Iterator[str]:
    for event in audit_events_iter():
        yield json.dumps(audit_row(event), ensure_ascii=False, sort_keys=True) + "\n"


@router.get(
    "/export",
    response={200: None, **ERRORS},
    summary="Export the whole audit log, streamed (CSV or JSON lines)",
)
def audit_export(request: HttpRequest, format: Literal["csv", "jsonl"] = "jsonl") -> Any:
    require(caller(request), Perm.AUDIT_VIEW, what="the audit log")
    if format == "csv":
        response = StreamingHttpResponse(_csv_lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    else:
        response = StreamingHttpResponse(
            _jsonl_lines(), content_type="application/x-ndjson; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="audit.jsonl"'
    return response
