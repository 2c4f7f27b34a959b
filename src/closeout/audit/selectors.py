"""Reads of the audit log."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import CharField, Q
from django.db.models.functions import Cast

from closeout.audit.models import AuditEvent


def audit_events_for(object_type: str, object_id: str | int) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("seq")
    )


def audit_scope(viewer: AbstractBaseUser) -> Q:
    """A condition on AuditEvent: the events `viewer` may read with `audit.view`.

    A company-wide auditor reads every event. An auditor over part of the company reads the
    events about documents there (by the document's unit and type) and about close and reopen
    requests on those documents; configuration, access, batch, import, sweep, report and
    archive events describe the whole company (or name documents of any unit), so only
    company-wide auditors read them."""
    from closeout.access.permissions import Perm
    from closeout.access.selectors import documents_visible_to, holds_company_wide
    from closeout.approvals.models import CloseRequest
    from closeout.documents.models import Document

    if holds_company_wide(viewer, Perm.AUDIT_VIEW):
        return Q()
    documents = Document.objects.filter(documents_visible_to(viewer, Perm.AUDIT_VIEW))
    document_ids = documents.annotate(key=Cast("pk", CharField())).values("key")
    request_ids = (
        CloseRequest.objects.filter(document__in=documents.values("pk"))
        .annotate(key=Cast("pk", CharField()))
        .values("key")
    )
    return Q(object_type="document", object_id__in=document_ids) | Q(
        object_type="close_request", object_id__in=request_ids
    )
