"""Checkpoints of the audit chain's head, outside the database: the head's sequence and hash,
sealed with the audit key, appended to a file (and optionally sent to a webhook or by e-mail) on
a schedule and after each batch. They reveal what a writer able to rewrite the whole tail (or
to cut it off) could otherwise hide."""

import fcntl
import hmac
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from closeout.audit.chain import CANONICAL_TIME_FORMAT, GENESIS_HASH, LEGACY_KEY_ID, canonical_json
from closeout.audit.keys import AuditKeyRing, AuditKeyUnknown, audit_key_ring
from closeout.audit.models import AuditChainHead, AuditEvent
from closeout.core.errors import ErrorWords, Message

log = logging.getLogger(__name__)

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
    message = CHECKPOINT_DOMAIN + canonical_json(checkpoint.payload())
    return hmac.digest(ring.secret(checkpoint.key_id), message, "sha256").hex()


def checkpoint_file() -> Path:
    return Path(settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE)


@dataclass
class CheckpointFile:
    """A checkpoint file read back: the authentic checkpoints, and what is wrong with the rest."""

    path: Path
    checkpoints: list[AuditCheckpoint] = field(default_factory=list)
    problems: list[tuple[int | None, Message]] = field(default_factory=list)  # (seq, what)


def audit_checkpoints_read(
    path: Path | None = None, ring: AuditKeyRing | None = None
) -> CheckpointFile:
    """The checkpoints of the file (the configured one by default) whose MAC the key ring
    confirms, and a problem for each line that is not one: unreadable, sealed with an unknown
    key, or altered. Long only because each of the three problems is spelled out."""
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
            result.problems.append(
                (
                    None,
                    Message(
                        N_("%(path)s line %(line)s is not a checkpoint"), path=path, line=number
                    ),
                )
            )
            continue
        try:
            authentic = hmac.compare_digest(_checkpoint_mac(checkpoint, ring), checkpoint.mac)
        except AuditKeyUnknown as exc:
            result.problems.append(
                (
                    checkpoint.seq,
                    Message(
                        N_("%(path)s line %(line)s (#%(seq)s): %(problem)s"),
                        path=path,
                        line=number,
                        seq=checkpoint.seq,
                        problem=ErrorWords(exc),
                    ),
                )
            )
            continue
        if not authentic:
            result.problems.append(
                (
                    checkpoint.seq,
                    Message(
                        N_(
                            "%(path)s line %(line)s: the checkpoint of #%(seq)s was altered "
                            "(its MAC does not match)"
                        ),
                        path=path,
                        line=number,
                        seq=checkpoint.seq,
                    ),
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
