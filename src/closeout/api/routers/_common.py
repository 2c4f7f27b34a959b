"""Helpers shared by the routers: the caller, error responses in the schema, If-Match."""

from typing import IO, Any, cast

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils.translation import gettext_noop
from ninja.files import UploadedFile

from closeout.api.schemas import Error
from closeout.api.services import PreconditionFailed
from closeout.core.errors import InvalidInput
from closeout.core.exports import XLSX_CONTENT_TYPE
from closeout.core.fields import field_words
from closeout.core.inputs import is_digits

# The refusals any operation can answer, each `{code, message, details}`: 401 no or a bad
# token, 403 a permission or CSRF refusal, 404 an unknown object, 409 a state that forbids
# the change, 412 a stale If-Match, 413 a body over the size limit, 422 bad input naming the
# field, 429 the rate limit. (Reads never answer 409 or 412: api.ClosingApi leaves them out of
# their documentation.)
ERRORS: dict[Any, Any] = {status: Error for status in (401, 403, 404, 409, 412, 413, 422, 429)}
WRITE_ONLY_STATUSES = ("409", "412")

# Media types of file downloads, for `download(...)`.
CSV = "text/csv"
XLSX = XLSX_CONTENT_TYPE
ZIP = "application/zip"
JSON_LINES = "application/x-ndjson"


def download(*media_types: str, also_json: bool = False) -> dict[str, Any]:
    """`openapi_extra` of an operation whose 200 is a file: its media types (as binary), and,
    with `also_json`, the JSON the operation answers without a `format`."""
    content = {t: {"schema": {"type": "string", "format": "binary"}} for t in media_types}
    if also_json:
        # Merged into the JSON response ninja documents from the 200 schema.
        return {"responses": {200: {"content": content}}}
    return {"responses": {200: {"description": "a file download", "content": content}}}


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
    if not is_digits(text) or len(text) > 18:
        raise PreconditionFailed(
            f"If-Match '{value[:40]}' is not a document version (the ETag this API returned)",
            details={"field": "If-Match"},
        )
    return int(text)


def etag(version: int) -> str:
    return f'"{version}"'


def uploaded_stream(upload: UploadedFile, field: str) -> IO[bytes]:
    """The bytes of a multipart upload, for the services that read files."""
    if upload.file is None:
        raise InvalidInput(
            gettext_noop("the upload '%(field)s' holds no file"),
            details={"field": field},
            params={"field": field_words(field)},
        )
    return cast(IO[bytes], upload.file)
