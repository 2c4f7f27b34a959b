"""Helpers shared by the routers: the caller, error responses in the schema, If-Match."""

from typing import IO, Any, cast

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from ninja.files import UploadedFile
from ninja.responses import codes_4xx

from closeout.api.schemas import Error
from closeout.api.services import PreconditionFailed
from closeout.core.errors import InvalidInput
from closeout.documents.models import Document

ERRORS: dict[Any, Any] = {codes_4xx: Error}
# Work handed to background workers: 503 broker_unavailable when the task broker does not
# answer (the work is recorded and sent when it answers again).
QUEUE_ERRORS: dict[Any, Any] = {**ERRORS, 503: Error}


def caller(request: HttpRequest) -> AbstractBaseUser:
    return cast(AbstractBaseUser, request.auth)  # type: ignore[attr-defined]


def if_match_version(request: HttpRequest) -> int | None:
    """The version an `If-Match` header names ("3", "\"3\"" or "W/\"3\""); None when absent
    or "*"."""
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise PreconditionFailed(
            f"If-Match '{value[:40]}' is not a document version (the ETag this API returned)",
            details={"field": "If-Match"},
        )
    return int(text)


def check_if_match(request: HttpRequest, document: Document) -> None:
    wanted = if_match_version(request)
    if wanted is not None and wanted != document.version:
        raise PreconditionFailed(
            f"{document.label} is at version {document.version}, not {wanted}: "
            "it changed since you read it; read it again and retry",
            details={"version": document.version},
        )


def etag(version: int) -> str:
    return f'"{version}"'


def uploaded_stream(upload: UploadedFile, field: str) -> IO[bytes]:
    """The bytes of a multipart upload, for the services that read files."""
    if upload.file is None:
        raise InvalidInput(f"the upload '{field}' holds no file", details={"field": field})
    return cast(IO[bytes], upload.file)
