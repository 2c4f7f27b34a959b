"""Reads of the audit log. Which events a viewer may read depends on documents and close
requests, so that condition lives above them: `closeout.approvals.selectors.audit_scope`."""

from closeout.audit.models import AuditEvent, AuditObject


def audit_events_for(object_type: AuditObject, object_id: str | int) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("seq")
    )
