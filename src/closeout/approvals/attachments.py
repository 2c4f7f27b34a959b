"""Evidence attached to close and reopen requests: accepted file types, checks of the content,
storage."""

import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.approvals.models import (
    Attachment,
    CloseRequest,
    RequestState,
)
from closeout.approvals.requests import (
    lock_request,
)
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import (
    InvalidInput,
    InvalidTransition,
    PermissionDenied,
    code_words,
)

ATTACHMENT_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    # extension: (content type, accepted leading bytes; empty = plain text)
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (b"PK\x03\x04",),
    ),
    "csv": ("text/csv", ()),
    "txt": ("text/plain", ()),
}


def _attachment_check(name: str, content: bytes) -> str:
    limit = int(getattr(settings, "CLOSEOUT_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024))
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ATTACHMENT_TYPES:
        raise InvalidInput(
            gettext_noop(
                "attachment '%(name)s': type .%(value)s is not allowed; allowed: %(list)s"
            ),
            details={"field": "attachments", "name": name},
            params={
                "name": name,
                "value": extension or "?",
                "list": ", ".join(f".{e}" for e in ATTACHMENT_TYPES),
            },
        )
    if not content:
        raise InvalidInput(
            gettext_noop("attachment '%(name)s' is empty"),
            details={"field": "attachments"},
            params={"name": name},
        )
    if len(content) > limit:
        raise InvalidInput(
            gettext_noop("attachment '%(name)s' is %(count)s bytes; the limit is %(limit)s"),
            details={"field": "attachments", "name": name},
            params={"name": name, "count": format(len(content), ","), "limit": format(limit, ",")},
        )
    content_type, magic = ATTACHMENT_TYPES[extension]
    if magic and not content.startswith(magic):
        raise InvalidInput(
            gettext_noop("attachment '%(name)s' is not really a .%(extension)s file"),
            details={"field": "attachments", "name": name},
            params={"name": name, "extension": extension},
        )
    if not magic:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = content.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    gettext_noop("attachment '%(name)s' is not a text file"),
                    details={"field": "attachments"},
                    params={"name": name},
                ) from exc
        if "\x00" in text:
            raise InvalidInput(
                gettext_noop("attachment '%(name)s' is not a text file"), params={"name": name}
            )
    return content_type


def attachments_store(
    request: CloseRequest, actor: AbstractBaseUser, files: list[tuple[str, bytes]]
) -> list[Attachment]:
    # Check every file before writing any: a bad file must not leave the good ones on disk.
    checked = [(name, content, _attachment_check(name, content)) for name, content in files]
    stored = []
    for name, content, content_type in checked:
        attachment = Attachment(
            request=request,
            original_name=name[:200],
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            uploaded_by_id=actor.pk,
        )
        attachment.file.save(name, ContentFile(content), save=False)
        attachment.save()
        stored.append(attachment)
    return stored


def attachment_add(
    *, actor: AbstractBaseUser, request: CloseRequest, name: str, content: bytes
) -> Attachment:
    """Add a file to a pending or rejected request (requester only)."""
    with transaction.atomic():
        request = lock_request(request.pk)
        if actor.pk != request.requester_id:
            raise PermissionDenied(
                gettext_noop("only the requester can add files to request #%(request)s"),
                params={"request": request.pk},
            )
        if request.state not in (RequestState.PENDING, RequestState.REJECTED):
            raise InvalidTransition(
                gettext_noop("request #%(request)s is %(state)s"),
                params={
                    "request": request.pk,
                    "state": code_words(request.state, RequestState(request.state).label),
                },
            )
        attachment = attachments_store(request, actor, [(name, content)])[0]
        audit_record(
            actor=actor,
            action=AuditAction.ATTACHMENT_ADDED,
            object_type=AuditObject.CLOSE_REQUEST,
            object_id=request.pk,
            object_repr=f"{request.action} #{request.pk}",
            data={
                "name": attachment.original_name,
                "size": attachment.size,
                "sha256": attachment.sha256,
            },
        )
        return attachment


__all__ = ["ATTACHMENT_TYPES", "attachment_add", "attachments_store"]
