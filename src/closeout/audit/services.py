"""Appending to the audit chain and verifying it.

Each event stores the hash of the previous one; the hash is SHA-256 over a canonical JSON of the
event's fields, so editing, deleting, inserting or reordering any row breaks the chain.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone
from psycopg.types.json import Jsonb

from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"


def to_json_value(value: Any) -> Any:
    """Values for `data`: decimals and dates as strings, so nothing passes through float."""
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
    """One event to append; `audit_append` fills sequence, time and hashes."""

    action: AuditAction
    object_type: str
    object_id: str | int
    object_repr: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    request_id: str = ""


# How `at` is written in the hashed payload (UTC, microseconds).
CANONICAL_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields an event's hash covers, as JSON values (also what archive packs export)."""
    return {
        "seq": event.seq,
        "at": event.at.astimezone(UTC).strftime(CANONICAL_TIME_FORMAT),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": int(event.action),
        "object_type": event.object_type,
        "object_id": str(event.object_id),
        "object_repr": event.object_repr,
        "data": event.data,
        "reason": event.reason,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
    }


def _canonical(event: AuditEvent) -> bytes:
    payload = canonical_payload(event)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


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
    head = AuditChainHead.objects.select_for_update(no_key=True).get(pk=1)
    moment = at or timezone.now()
    # Stored times are truncated to microseconds by both databases; hash what will be read back.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    actor_id = actor.pk if actor is not None else None
    actor_name = actor.get_username() if actor is not None else SYSTEM_ACTOR
    events: list[AuditEvent] = []
    prev_hash, seq = head.last_hash, head.last_seq
    for entry in entries:
        seq += 1
        event = AuditEvent(
            seq=seq,
            at=moment,
            actor_id=actor_id,
            actor_name=actor_name,
            action=int(entry.action),
            object_type=entry.object_type,
            object_id=str(entry.object_id),
            object_repr=entry.object_repr[:200],
            data=to_json_value(entry.data),
            reason=entry.reason,
            request_id=entry.request_id,
            prev_hash=prev_hash,
        )
        event.hash = event_hash(event)
        prev_hash = event.hash
        events.append(event)
    _insert(events)
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
        with cursor.cursor.copy(f"COPY {qn(table)} ({columns}) FROM STDIN") as copy:
            for event in events:
                row = [event.pk, *(getattr(event, n) for n in names)]
                row[data_at] = Jsonb(row[data_at])
                copy.write_row(row)


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: AuditAction,
    object_type: str,
    object_id: str | int,
    object_repr: str = "",
    data: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    entry = AuditEntry(action, object_type, object_id, object_repr, data or {}, reason)
    return audit_append(actor=actor, entries=[entry])[0]


@dataclass(frozen=True)
class ChainVerdict:
    intact: bool
    checked: int
    head_hash: str
    problem: str = ""
    first_bad_seq: int | None = None


def _iter_events(chunk: int = 5000) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        rows = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:chunk])
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


def audit_chain_verify() -> ChainVerdict:
    """Walk the chain in insertion order (primary key) and check sequence, links and hashes."""
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in _iter_events():
        if event.seq != expected_seq:
            return ChainVerdict(
                False,
                checked,
                prev_hash,
                f"event #{event.seq} (id {event.id}) found where #{expected_seq} was expected: "
                "an event was deleted, inserted or reordered",
                event.seq,
            )
        if event.prev_hash != prev_hash:
            return ChainVerdict(
                False,
                checked,
                prev_hash,
                f"event #{event.seq} does not link to the event before it: "
                "an event before it was removed or replaced",
                event.seq,
            )
        if event_hash(event) != event.hash:
            return ChainVerdict(
                False,
                checked,
                prev_hash,
                f"event #{event.seq} was modified after it was written (hash mismatch)",
                event.seq,
            )
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.get(pk=1)
    if head.last_seq < checked:
        # A well-formed event appended behind the application's back: the head never saw it.
        return ChainVerdict(
            False,
            checked,
            prev_hash,
            f"event #{head.last_seq + 1} is beyond the head (#{head.last_seq}): "
            "events were inserted after the last recorded one",
            head.last_seq + 1,
        )
    if head.last_seq == checked and head.last_hash != prev_hash:
        return ChainVerdict(
            False,
            checked,
            prev_hash,
            f"event #{checked} does not match the hash the head recorded: it was replaced",
            checked,
        )
    if head.last_seq != checked:
        return ChainVerdict(
            False,
            checked,
            prev_hash,
            f"the chain ends at #{checked} but the head records #{head.last_seq}: "
            "the newest events were deleted",
            checked + 1,
        )
    return ChainVerdict(True, checked, prev_hash)
