"""Reads behind the API that no domain selector gives: what a caller may see, pages by id."""

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils.translation import gettext_noop

from closeout.access.selectors import documents_visible_to
from closeout.access.services import require
from closeout.audit.models import AuditEvent
from closeout.core.errors import InvalidInput
from closeout.core.inputs import is_digits


def visible_scope(user: AbstractBaseUser, perm: str, doc_type: str) -> Q:
    """Documents of `doc_type` in the organisation units where `user` holds `perm` now.
    Raises PermissionDenied (naming the permission) when there are none."""
    require(user, perm, doc_type=doc_type, what=f"{doc_type} documents")
    return documents_visible_to(user, perm) & Q(doc_type=doc_type)


def cursor_value(cursor: str | None) -> int | None:
    """Cursors are the last id of the previous page, as a string."""
    if cursor is None or cursor == "":
        return None
    if not is_digits(cursor) or len(cursor) > 18:
        raise InvalidInput(
            gettext_noop("cursor '%(cursor)s' is not one this API returned"),
            details={"field": "cursor"},
            params={"cursor": cursor[:40]},
        )
    return int(cursor)


def audit_events_iter(scope: Q | None = None, chunk: int = 2000) -> Iterator[AuditEvent]:
    """Every audit event matching `scope` (closeout.audit.selectors.audit_scope of the viewer)
    in sequence order, a chunk at a time (for streamed export)."""
    last = 0
    events = AuditEvent.objects.filter(scope if scope is not None else Q())
    while True:
        rows = list(events.filter(seq__gt=last).select_related("actor").order_by("seq")[:chunk])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def audit_row(event: AuditEvent) -> dict[str, Any]:
    from closeout.audit.models import AuditAction

    try:
        action = AuditAction(event.action).label
    except ValueError:
        action = str(event.action)
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor_name,
        "action": action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "data": event.data,
        "reason": event.reason,
        "request_id": event.request_id,
        "http_request_id": event.http_request_id,
        "key_id": event.key_id,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
