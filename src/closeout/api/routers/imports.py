"""Import of close instructions (导入结案指令): the template, upload (validated at once, nothing
changes), the stored report, and execution of the valid rows as one batch job."""

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import File, Router, Status
from ninja.files import UploadedFile

from closeout.api import present
from closeout.api.routers._common import (
    CSV,
    ERRORS,
    QUEUE_ERRORS,
    XLSX,
    caller,
    download,
    uploaded_stream,
)
from closeout.api.schemas import BatchOut, ImportOut
from closeout.batches.import_template import import_template
from closeout.batches.imports import import_execute, import_get, import_validate
from closeout.batches.models import BatchJob
from closeout.core.exports import XLSX_CONTENT_TYPE

router = Router(tags=["imports"])


@router.get(
    "/template",
    response={200: None, **ERRORS},
    summary="The import template (.xlsx with drop-down lists, or the CSV header row)",
    openapi_extra=download(XLSX, CSV),
)
def template(request: HttpRequest, format: Literal["xlsx", "csv"] = "xlsx") -> Any:
    response = HttpResponse(
        import_template(format),
        content_type=XLSX_CONTENT_TYPE if format == "xlsx" else "text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="closeout-import-template.{format}"'
    return response


@router.post(
    "",
    response={201: ImportOut, **ERRORS},
    summary="Upload a file of close instructions: validated at once, nothing changes",
)
def import_upload(request: HttpRequest, file: File[UploadedFile]) -> Any:
    """Multipart field `file` (.xlsx or .csv, UTF-8 or GBK). A file that cannot be read is a 422
    naming the problem; rows with errors are stored with their row, column and message."""
    imported = import_validate(
        actor=caller(request), upload=uploaded_stream(file, "file"), file_name=file.name or ""
    )
    return Status(201, present.import_out(import_get(actor=caller(request), import_id=imported.pk)))


@router.get("/{import_id}", response={200: ImportOut, **ERRORS}, summary="An import and its report")
def import_detail(request: HttpRequest, import_id: int) -> Any:
    return present.import_out(import_get(actor=caller(request), import_id=import_id))


@router.post(
    "/{import_id}/execute",
    response={201: BatchOut, **QUEUE_ERRORS},
    summary="Run the valid rows as one batch job (started at once)",
)
def import_run(request: HttpRequest, import_id: int) -> Any:
    actor = caller(request)
    imported = import_get(actor=actor, import_id=import_id)
    job = import_execute(actor=actor, import_file=imported, workers=1)
    return Status(
        201, present.batch_out(BatchJob.objects.select_related("created_by").get(pk=job.pk))
    )
