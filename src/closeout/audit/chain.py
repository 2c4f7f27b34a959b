"""Appending to the audit chain: each event stores the hash of the previous one and is sealed
with HMAC-SHA-256 over a canonical JSON of its fields, under a key that never lives in the
database (closeout.audit.keys). Events written before keys (key_id "") were sealed with plain
SHA-256 and still verify, but only as the chain's beginning."""

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from psycopg.types.json import Jsonb

from closeout.audit.keys import AuditKeyRing, audit_key_ring
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent, AuditObject
from closeout.core.request_id import current_request_id

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"
# key_id of the events sealed before keys: plain SHA-256.
LEGACY_KEY_ID = ""


# Values `to_json_value` passes through as they are, tested by exact type first (the common case).
_PLAIN_TYPES = frozenset({str, int, bool, float, type(None)})


def to_json_value(value: Any) -> Any:
    """Values for `data`: decimals and dates as strings, so nothing passes through float."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    return value


@dataclass
class AuditEntry:
    """One event to append; `audit_append` fills sequence, time, request id and hashes."""

    action: AuditAction
    object_type: AuditObject
    object_id: str | int
    object_repr: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    request_id: str = ""


# How `at` is written in the hashed payload (UTC, microseconds).
CANONICAL_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields an event's hash covers, as JSON values (also what archive packs export).
    A keyed event's payload also holds its key id and HTTP request id; a legacy event's is
    exactly what it was when it was written (it had no request id: one there is an edit)."""
    return _payload(
        seq=event.seq,
        at_text=event.at.astimezone(UTC).strftime(CANONICAL_TIME_FORMAT),
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        action=int(event.action),
        object_type=event.object_type,
        object_id=str(event.object_id),
        object_repr=event.object_repr,
        data=event.data,
        reason=event.reason,
        request_id=event.request_id,
        prev_hash=event.prev_hash,
        key_id=event.key_id,
        http_request_id=event.http_request_id,
    )


def _payload(
    *,
    seq: int,
    at_text: str,
    actor_id: int | None,
    actor_name: str,
    action: int,
    object_type: str,
    object_id: str,
    object_repr: str,
    data: Any,
    reason: str,
    request_id: str,
    prev_hash: str,
    key_id: str,
    http_request_id: str,
) -> dict[str, Any]:
    """`canonical_payload` from the field values (`audit_append` hashes before it has events)."""
    payload = {
        "seq": seq,
        "at": at_text,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "data": data,
        "reason": reason,
        "request_id": request_id,
        "prev_hash": prev_hash,
    }
    if key_id or http_request_id:
        payload["key_id"] = key_id
        payload["http_request_id"] = http_request_id
    return payload


def canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent, ring: AuditKeyRing | None = None) -> str:
    """The chain's hash function: HMAC-SHA-256 with the key the event names, or plain SHA-256
    for the events written before keys. Raises AuditKeyUnknown for a key not in the ring."""
    message = canonical_json(canonical_payload(event))
    if event.key_id == LEGACY_KEY_ID:
        return hashlib.sha256(message).hexdigest()
    secret = (ring or audit_key_ring()).secret(event.key_id)
    return hmac.digest(secret, message, "sha256").hex()


# The model's positional constructor (Model.from_db's way), typed as what it is.
_new_event: Callable[..., AuditEvent] = AuditEvent


@cache
def _event_fields() -> tuple[str, ...]:
    """AuditEvent's column names in field order (its positional constructor's order)."""
    return tuple(f.attname for f in AuditEvent._meta.concrete_fields)


def audit_append(
    *, actor: AbstractBaseUser | None, entries: Iterable[AuditEntry], at: datetime | None = None
) -> list[AuditEvent]:
    """Append events to the chain inside the caller's transaction (required: one audit event
    per change, committed or rolled back together with it)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_append must run inside the transaction of the change it records")
    entries = list(entries)
    if not entries:
        return []
    ring = audit_key_ring()
    key_id = ring.current
    secret = ring.secret(key_id)
    head = AuditChainHead.objects.select_for_update(no_key=True).get(pk=1)
    moment = at or timezone.now()
    # Stored times are truncated to microseconds by both databases; hash what will be read back.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    actor_id = actor.pk if actor is not None else None
    actor_name = actor.get_username() if actor is not None else SYSTEM_ACTOR
    http_request_id = current_request_id.get()[:64]
    at_text = moment.astimezone(UTC).strftime(CANONICAL_TIME_FORMAT)
    events: list[AuditEvent] = []
    prev_hash, seq = head.last_hash, head.last_seq
    for entry in entries:
        seq += 1
        values = {
            "seq": seq,
            "actor_id": actor_id,
            "actor_name": actor_name,
            "action": int(entry.action),
            # An unknown kind of object is a programming error (ValueError), never stored.
            "object_type": AuditObject(entry.object_type).value,
            "object_id": str(entry.object_id),
            "object_repr": entry.object_repr[:200],
            "data": to_json_value(entry.data),
            "reason": entry.reason,
            "request_id": entry.request_id,
            "http_request_id": http_request_id,
            "key_id": key_id,
            "prev_hash": prev_hash,
        }
        digest = hmac.digest(secret, canonical_json(_payload(at_text=at_text, **values)), "sha256")
        prev_hash = digest.hex()
        row = {**values, "id": None, "at": moment, "hash": prev_hash}
        # Positional, in field order: a model built from keywords costs several times more.
        events.append(_new_event(*[row[name] for name in _event_fields()]))
    _insert(events)
    # The insert trigger has moved the head already; saying so again keeps the head right where
    # the triggers are switched off (and the head trigger lets an unchanged head through).
    head.last_seq, head.last_hash = seq, prev_hash
    head.save(update_fields=["last_seq", "last_hash"])
    return events


# Above this many events PostgreSQL gets them by COPY (the sweep writes thousands per chunk).
COPY_THRESHOLD = 500


def _insert(events: list[AuditEvent]) -> None:
    if connection.vendor != "postgresql" or len(events) < COPY_THRESHOLD:
        AuditEvent.objects.bulk_create(events, batch_size=2000)
        return
    table = AuditEvent._meta.db_table
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Ids are taken while the chain head is locked, so id order stays sequence order.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(events)],
        )
        for event, (pk,) in zip(events, sorted(cursor.fetchall()), strict=True):
            event.pk = pk
        columns = ", ".join(qn(n) for n in ["id", *(f.attname for f in fields)])
        names = [f.attname for f in fields]
        data_at = names.index("data") + 1
        # One COPY is one statement: the continuity trigger checks all its rows at once.
        with cursor.cursor.copy(f"COPY {qn(table)} ({columns}) FROM STDIN") as copy:
            for event in events:
                row = [event.pk, *(getattr(event, n) for n in names)]
                row[data_at] = Jsonb(row[data_at])
                copy.write_row(row)


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: AuditAction,
    object_type: AuditObject,
    object_id: str | int,
    object_repr: str = "",
    data: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    entry = AuditEntry(action, object_type, object_id, object_repr, data or {}, reason)
    return audit_append(actor=actor, entries=[entry])[0]


@contextmanager
def sqlite_audit_guards_lifted(conn: BaseDatabaseWrapper | None = None) -> Iterator[None]:
    """SQLite only: drop the audit tables' triggers for the duration and create them again.
    What TRUNCATE is on PostgreSQL (which fires no row trigger): for emptying every table at
    once, as `closeout demo --reset` and the test teardown's flush do."""
    conn = conn or connection
    if conn.vendor != "sqlite":
        raise RuntimeError("sqlite_audit_guards_lifted is for SQLite; use TRUNCATE elsewhere")
    tables = (AuditEvent._meta.db_table, AuditChainHead._meta.db_table)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s)",
            list(tables),
        )
        saved = cursor.fetchall()
        for name, _ in saved:
            cursor.execute(f"DROP TRIGGER {conn.ops.quote_name(name)}")
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            for _, sql in saved:
                cursor.execute(sql)
