"""The audit entry about a document: the one shape every event about a document takes (its id
and label as the object), for the services that write one."""

from typing import Any

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry
from closeout.documents.models import Document


def document_entry(
    *,
    action: AuditAction,
    document: Document,
    data: dict[str, Any] | None = None,
    reason: str = "",
    request_id: str = "",
) -> AuditEntry:
    return AuditEntry(
        action=action,
        object_type=AuditObject.DOCUMENT,
        object_id=document.pk,
        object_repr=document.label,
        data=data or {},
        reason=reason,
        request_id=request_id,
    )
