"""Documents, their lines and business events: the writes of this app, in four modules —
`lookup` (find and lock), `upsert` (documents as the ERP sends them, their values checked in
`document_values`), `events` (business events, their effects in `event_effects`) and `sync`
(ERP synchronisation). This module keeps the old import path of all four."""

from closeout.documents.document_values import (
    AMOUNT_COLUMN,
    COMPANY_TOTAL_COLUMN,
    PRICE_COLUMN,
    QTY_COLUMN,
    RATE_COLUMN,
    TOTAL_COLUMN,
    LineInput,
    document_checked,
    document_rate,
)
from closeout.documents.event_effects import event_effect
from closeout.documents.events import (
    TOUCHED_FIELDS,
    EventResult,
    PostOutcome,
    SentEvent,
    document_touched,
    event_audit_entry,
    event_checked,
    event_line,
    event_post,
    event_quarantine_reason,
    event_repeated,
)
from closeout.documents.events_pending import event_confirm, events_apply_quarantined
from closeout.documents.lookup import (
    IN_CHUNK,
    document_get,
    document_get_visible,
    document_lock,
    document_missing,
    document_pick_from,
    document_require_visible,
    documents_lock_many,
    documents_numbered_many,
    locked_message,
)
from closeout.documents.sync import (
    LineData,
    document_sync,
    external_id_taken,
    partner_sync,
    unknown_partner,
)
from closeout.documents.upsert import (
    NewDocument,
    document_new,
    document_unchanged,
    document_upsert,
)

__all__ = [
    "AMOUNT_COLUMN",
    "COMPANY_TOTAL_COLUMN",
    "IN_CHUNK",
    "PRICE_COLUMN",
    "QTY_COLUMN",
    "RATE_COLUMN",
    "TOTAL_COLUMN",
    "TOUCHED_FIELDS",
    "EventResult",
    "LineData",
    "LineInput",
    "NewDocument",
    "PostOutcome",
    "SentEvent",
    "document_checked",
    "document_get",
    "document_get_visible",
    "document_lock",
    "document_missing",
    "document_new",
    "document_pick_from",
    "document_rate",
    "document_require_visible",
    "document_sync",
    "document_touched",
    "document_unchanged",
    "document_upsert",
    "documents_lock_many",
    "documents_numbered_many",
    "event_audit_entry",
    "event_checked",
    "event_confirm",
    "event_effect",
    "event_line",
    "event_post",
    "event_quarantine_reason",
    "event_repeated",
    "events_apply_quarantined",
    "external_id_taken",
    "locked_message",
    "partner_sync",
    "unknown_partner",
]
