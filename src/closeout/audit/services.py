"""Appending to the audit chain, verifying it, and checkpointing its head outside the database.

Each event stores the hash of the previous one and is sealed with HMAC-SHA-256 over a canonical
JSON of its fields, under a key that never lives in the database (closeout.audit.keys): editing,
deleting, inserting or reordering any row breaks the chain, and a database writer without the key
cannot seal a row of its own. Events written before keys (key_id "") were sealed with plain
SHA-256 and still verify, but only as the chain's beginning: no such event may follow a keyed one.

What a writer with the power to rewrite the whole tail (or to cut it off) could still hide, the
checkpoints reveal: the head's sequence and hash, sealed with the key, appended to a file outside
the database (and optionally sent to a webhook or by e-mail) on a schedule and after each batch.
"""

import fcntl
import hashlib
import hmac
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from psycopg.types.json import Jsonb

from closeout.audit.keys import AuditKeyRing, AuditKeyUnknown, audit_key_ring
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent, AuditObject
from closeout.core.request_id import current_request_id

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"
# key_id of the events sealed before keys: plain SHA-256.
LEGACY_KEY_ID = ""


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
    payload = {
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
    if event.key_id or event.http_request_id:
        payload["key_id"] = event.key_id
        payload["http_request_id"] = event.http_request_id
    return payload


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent, ring: AuditKeyRing | None = None) -> str:
    """The chain's hash function: HMAC-SHA-256 with the key the event names, or plain SHA-256
    for the events written before keys. Raises AuditKeyUnknown for a key not in the ring."""
    message = _canonical(canonical_payload(event))
    if event.key_id == LEGACY_KEY_ID:
        return hashlib.sha256(message).hexdigest()
    secret = (ring or audit_key_ring()).secret(event.key_id)
    return hmac.digest(secret, message, "sha256").hex()


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
            # An unknown kind of object is a programming error (ValueError), never stored.
            object_type=AuditObject(entry.object_type).value,
            object_id=str(entry.object_id),
            object_repr=entry.object_repr[:200],
            data=to_json_value(entry.data),
            reason=entry.reason,
            request_id=entry.request_id,
            http_request_id=http_request_id,
            key_id=key_id,
            prev_hash=prev_hash,
        )
        event.hash = hmac.digest(secret, _canonical(canonical_payload(event)), "sha256").hex()
        prev_hash = event.hash
        events.append(event)
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


# --- checkpoints ------------------------------------------------------------------------------

CHECKPOINT_DOMAIN = b"closeout-audit-checkpoint/1\n"


@dataclass(frozen=True)
class AuditCheckpoint:
    """The chain's head at a moment, sealed with the audit key. `legacy_until` is the last
    event sealed without a key (plain SHA-256): none may come after it."""

    seq: int
    hash: str
    at: str
    legacy_until: int
    key_id: str
    mac: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "legacy_until": self.legacy_until,
            "key_id": self.key_id,
        }

    def line(self) -> str:
        return json.dumps({**self.payload(), "mac": self.mac}, sort_keys=True) + "\n"


def _checkpoint_mac(checkpoint: AuditCheckpoint, ring: AuditKeyRing) -> str:
    message = CHECKPOINT_DOMAIN + _canonical(checkpoint.payload())
    return hmac.digest(ring.secret(checkpoint.key_id), message, "sha256").hex()


def checkpoint_file() -> Path:
    return Path(settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE)


@dataclass
class CheckpointFile:
    """A checkpoint file read back: the authentic checkpoints, and what is wrong with the rest."""

    path: Path
    checkpoints: list[AuditCheckpoint] = field(default_factory=list)
    problems: list[tuple[int | None, str]] = field(default_factory=list)  # (seq, message)


def audit_checkpoints_read(
    path: Path | None = None, ring: AuditKeyRing | None = None
) -> CheckpointFile:
    path = path or checkpoint_file()
    ring = ring or audit_key_ring()
    result = CheckpointFile(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return result
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            checkpoint = AuditCheckpoint(
                seq=int(raw["seq"]),
                hash=str(raw["hash"]),
                at=str(raw["at"]),
                legacy_until=int(raw["legacy_until"]),
                key_id=str(raw["key_id"]),
                mac=str(raw["mac"]),
            )
        except (ValueError, KeyError, TypeError):
            result.problems.append((None, f"{path} line {number} is not a checkpoint"))
            continue
        try:
            authentic = hmac.compare_digest(_checkpoint_mac(checkpoint, ring), checkpoint.mac)
        except AuditKeyUnknown as exc:
            result.problems.append(
                (checkpoint.seq, f"{path} line {number} (#{checkpoint.seq}): {exc.message}")
            )
            continue
        if not authentic:
            result.problems.append(
                (
                    checkpoint.seq,
                    f"{path} line {number}: the checkpoint of #{checkpoint.seq} was altered "
                    "(its MAC does not match)",
                )
            )
            continue
        result.checkpoints.append(checkpoint)
    return result


def _legacy_until(head: AuditChainHead, previous: Iterable[AuditCheckpoint]) -> int:
    """The last event sealed without a key. Final once a keyed event exists, so a checkpoint
    that saw keyed events already tells it without scanning the chain's beginning again."""
    for checkpoint in previous:
        if checkpoint.legacy_until < checkpoint.seq <= head.last_seq:
            return checkpoint.legacy_until
    first_keyed = (
        AuditEvent.objects.exclude(key_id=LEGACY_KEY_ID)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    return head.last_seq if first_keyed is None else first_keyed - 1


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = line.encode()
        size = os.fstat(fd).st_size
        if size:
            with path.open("rb") as tail:
                tail.seek(size - 1)
                if tail.read(1) != b"\n":  # a line cut short by a crash: start a fresh one
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class CheckpointResult:
    checkpoint: AuditCheckpoint
    path: Path
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.checkpoint),
            "path": str(self.path),
            "sent": self.sent,
            "failed": self.failed,
        }


def _post_checkpoint(url: str, checkpoint: AuditCheckpoint) -> str:
    """POST the checkpoint as JSON; "" or what went wrong."""
    if urlsplit(url).scheme not in {"http", "https"}:
        return f"checkpoint URL {url!r} is not http(s)"
    request = urllib.request.Request(  # noqa: S310 — scheme checked above
        url,
        data=checkpoint.line().encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "closeout-audit-checkpoint/1",
        },
    )
    timeout = float(getattr(settings, "CLOSEOUT_AUDIT_CHECKPOINT_TIMEOUT", 10))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "" if 200 <= status < 300 else f"HTTP {status}"


def audit_checkpoint_write(*, path: Path | None = None) -> CheckpointResult:
    """Seal the committed head and append it to the checkpoint file, then send it to the
    webhook and e-mail addresses configured. Run it outside a transaction (or after commit):
    a checkpoint of a head that is then rolled back would later read as a truncation."""
    path = path or checkpoint_file()
    ring = audit_key_ring()
    head = AuditChainHead.objects.get(pk=1)
    previous = audit_checkpoints_read(path, ring).checkpoints
    checkpoint = AuditCheckpoint(
        seq=head.last_seq,
        hash=head.last_hash,
        at=timezone.now().astimezone(UTC).strftime(CANONICAL_TIME_FORMAT),
        legacy_until=_legacy_until(head, reversed(previous)),
        key_id=ring.current,
    )
    checkpoint = AuditCheckpoint(**{**asdict(checkpoint), "mac": _checkpoint_mac(checkpoint, ring)})
    _append_line(path, checkpoint.line())
    result = CheckpointResult(checkpoint, path)
    url = getattr(settings, "CLOSEOUT_AUDIT_CHECKPOINT_URL", "")
    if url:
        problem = _post_checkpoint(url, checkpoint)
        (result.failed if problem else result.sent).append(
            f"{url}{': ' + problem if problem else ''}"
        )
    recipients = list(getattr(settings, "CLOSEOUT_AUDIT_CHECKPOINT_EMAIL", []))
    if recipients:
        try:
            send_mail(
                f"closeout audit checkpoint #{checkpoint.seq}",
                checkpoint.line(),
                None,
                recipients,
            )
            result.sent.append("mail: " + ", ".join(recipients))
        except (OSError, ValueError) as exc:
            result.failed.append(f"mail: {type(exc).__name__}: {exc}")
    for problem in result.failed:
        log.error("audit checkpoint #%s not delivered: %s", checkpoint.seq, problem)
    return result


def audit_chain_restart() -> None:
    """After the events table was emptied (`closeout demo --reset`): the head back at the
    genesis, and, once that commits, the old chain's checkpoints moved aside (kept, renamed),
    since against them the new chain would read as a truncation."""
    AuditChainHead.objects.update_or_create(
        pk=1, defaults={"last_seq": 0, "last_hash": GENESIS_HASH}
    )
    path = checkpoint_file()

    def move_aside() -> None:
        if path.exists():
            stamp = timezone.now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path.rename(path.with_name(f"{path.name}.{stamp}.before-reset"))

    transaction.on_commit(move_aside)


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


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainVerdict:
    intact: bool
    checked: int
    head_hash: str
    problem: str = ""
    first_bad_seq: int | None = None
    # The sequence range the problem concerns (first, last), when it is more than one event.
    bad_range: tuple[int, int] | None = None
    checkpoints: int = 0
    last_checkpoint: AuditCheckpoint | None = None


def _iter_events(chunk: int = 5000, using: str = DEFAULT_DB_ALIAS) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        rows = list(AuditEvent.objects.using(using).filter(id__gt=last_id).order_by("id")[:chunk])
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


@dataclass
class _Walk:
    """What the walk has seen so far, and the verdicts it can give."""

    checkpoints: CheckpointFile
    checked: int = 0
    prev_hash: str = GENESIS_HASH

    @property
    def last(self) -> AuditCheckpoint | None:
        cps = self.checkpoints.checkpoints
        return max(cps, key=lambda c: (c.seq, c.at)) if cps else None

    def broken(
        self, problem: str, first_bad_seq: int | None, bad_range: tuple[int, int] | None = None
    ) -> ChainVerdict:
        return ChainVerdict(
            False,
            self.checked,
            self.prev_hash,
            problem,
            first_bad_seq,
            bad_range,
            len(self.checkpoints.checkpoints),
            self.last,
        )


def audit_chain_verify(
    *, checkpoints: Path | None = None, using: str = DEFAULT_DB_ALIAS
) -> ChainVerdict:
    """Walk the chain in insertion order (primary key) and check sequence, links and MACs,
    then the head, then the chain against the checkpoints written outside the database
    (`checkpoints`: another copy of the checkpoint file than the configured one; `using`:
    another database, such as a backup opened for verification)."""
    ring = audit_key_ring()
    walk = _Walk(audit_checkpoints_read(checkpoints, ring))
    at_seq: dict[int, list[AuditCheckpoint]] = {}
    for checkpoint in walk.checkpoints.checkpoints:
        at_seq.setdefault(checkpoint.seq, []).append(checkpoint)
    # The checkpoints that saw keyed events know where plain SHA-256 sealing ended.
    bounds = [c for c in walk.checkpoints.checkpoints if c.legacy_until < c.seq]
    legacy_bound = min(bounds, key=lambda c: c.legacy_until) if bounds else None
    keyed_seen = False
    matched_seq = 0  # the last checkpoint the chain agreed with
    expected_seq = 1
    for event in _iter_events(using=using):
        if event.seq != expected_seq:
            return walk.broken(
                f"event #{event.seq} (id {event.id}) found where #{expected_seq} was expected: "
                "an event was deleted, inserted or reordered",
                event.seq,
            )
        if event.prev_hash != walk.prev_hash:
            return walk.broken(
                f"event #{event.seq} does not link to the event before it: "
                "an event before it was removed or replaced",
                event.seq,
            )
        if event.key_id == LEGACY_KEY_ID:
            if keyed_seen:
                return walk.broken(
                    f"event #{event.seq} is sealed with plain SHA-256 after events sealed with "
                    "the audit key: it was written or rewritten behind the application",
                    event.seq,
                )
            if legacy_bound is not None and event.seq > legacy_bound.legacy_until:
                return walk.broken(
                    f"event #{event.seq} is sealed with plain SHA-256, but the checkpoint of "
                    f"{legacy_bound.at} recorded sealing with the audit key from "
                    f"#{legacy_bound.legacy_until + 1} on: the chain was rewritten",
                    event.seq,
                )
        else:
            keyed_seen = True
        try:
            sealed = hmac.compare_digest(event_hash(event, ring), event.hash)
        except AuditKeyUnknown:
            return walk.broken(
                f"event #{event.seq} is sealed with audit key {event.key_id!r}, which is not in "
                "the key ring: it was forged, or the key was removed from the ring",
                event.seq,
            )
        if not sealed:
            return walk.broken(
                f"event #{event.seq} was modified after it was written (hash mismatch)",
                event.seq,
            )
        for checkpoint in at_seq.get(event.seq, ()):
            if checkpoint.hash != event.hash:
                return walk.broken(
                    f"event #{event.seq} is not the event the checkpoint of {checkpoint.at} "
                    f"recorded (hash {event.hash[:12]}… instead of {checkpoint.hash[:12]}…): "
                    f"events #{matched_seq + 1}..#{event.seq} were rewritten since "
                    + (f"checkpoint #{matched_seq}" if matched_seq else "the beginning"),
                    matched_seq + 1,
                    (matched_seq + 1, event.seq),
                )
            matched_seq = event.seq
        walk.prev_hash = event.hash
        expected_seq += 1
        walk.checked += 1
    checked = walk.checked
    head = AuditChainHead.objects.using(using).get(pk=1)
    if head.last_seq < checked:
        # A well-formed event appended behind the application's back: the head never saw it.
        return walk.broken(
            f"event #{head.last_seq + 1} is beyond the head (#{head.last_seq}): "
            "events were inserted after the last recorded one",
            head.last_seq + 1,
        )
    if head.last_seq == checked and head.last_hash != walk.prev_hash:
        return walk.broken(
            f"event #{checked} does not match the hash the head recorded: it was replaced",
            checked,
        )
    if head.last_seq != checked:
        return walk.broken(
            f"the chain ends at #{checked} but the head records #{head.last_seq}: "
            "the newest events were deleted",
            checked + 1,
            (checked + 1, head.last_seq),
        )
    beyond = [c for c in walk.checkpoints.checkpoints if c.seq > checked]
    if beyond:
        latest = max(beyond, key=lambda c: c.seq)
        return walk.broken(
            f"the chain ends at #{checked} but the checkpoint of {latest.at} recorded "
            f"#{latest.seq}: events #{checked + 1}..#{latest.seq} were deleted (truncation) "
            "since then",
            checked + 1,
            (checked + 1, latest.seq),
        )
    if walk.checkpoints.problems:
        seq, problem = walk.checkpoints.problems[0]
        return walk.broken(f"checkpoint file: {problem}", seq)
    return ChainVerdict(
        True,
        checked,
        walk.prev_hash,
        checkpoints=len(walk.checkpoints.checkpoints),
        last_checkpoint=walk.last,
    )
