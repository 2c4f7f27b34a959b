"""Verifying the audit chain: sequence, links and seals of every event, the head, and the chain
against the checkpoints written outside the database."""

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext_noop as N_

from closeout.audit.chain import GENESIS_HASH, LEGACY_KEY_ID, event_hash
from closeout.audit.checkpoints import AuditCheckpoint, CheckpointFile, audit_checkpoints_read
from closeout.audit.keys import AuditKeyRing, AuditKeyUnknown, audit_key_ring
from closeout.audit.models import AuditChainHead, AuditEvent
from closeout.core.errors import Message


@dataclass(frozen=True)
class ChainVerdict:
    """`message` says what is wrong in the reader's language (`str()`), `problem` in English
    (the API, the command line, stored records)."""

    intact: bool
    checked: int
    head_hash: str
    message: Message | None = None
    first_bad_seq: int | None = None
    # The sequence range the problem concerns (first, last), when it is more than one event.
    bad_range: tuple[int, int] | None = None
    checkpoints: int = 0
    last_checkpoint: AuditCheckpoint | None = None

    @property
    def problem(self) -> str:
        return self.message.en if self.message is not None else ""


class _Broken(Exception):
    """The walk stops at the first problem."""

    def __init__(
        self, message: Message, first_bad_seq: int | None, bad_range: tuple[int, int] | None = None
    ) -> None:
        super().__init__(message.en)
        self.message, self.first_bad_seq, self.bad_range = message, first_bad_seq, bad_range


@dataclass
class _Walk:
    """What the walk has seen so far: the checkpoints, where plain SHA-256 sealing must end,
    and the last checkpoint the chain agreed with."""

    checkpoints: CheckpointFile
    checked: int = 0
    prev_hash: str = GENESIS_HASH
    # Events before the first one walked (a verification from an anchor event on).
    skipped: int = 0
    keyed_seen: bool = False
    matched_seq: int = 0
    at_seq: dict[int, list[AuditCheckpoint]] = field(default_factory=dict)
    legacy_bound: AuditCheckpoint | None = None

    def __post_init__(self) -> None:
        for checkpoint in self.checkpoints.checkpoints:
            self.at_seq.setdefault(checkpoint.seq, []).append(checkpoint)
        # The checkpoints that saw keyed events know where plain SHA-256 sealing ended.
        bounds = [c for c in self.checkpoints.checkpoints if c.legacy_until < c.seq]
        self.legacy_bound = min(bounds, key=lambda c: c.legacy_until) if bounds else None

    @property
    def last_seq(self) -> int:
        """The sequence of the last event walked (or skipped)."""
        return self.skipped + self.checked

    @property
    def last(self) -> AuditCheckpoint | None:
        cps = self.checkpoints.checkpoints
        return max(cps, key=lambda c: (c.seq, c.at)) if cps else None

    def verdict(self, broken: _Broken | None = None) -> ChainVerdict:
        if broken is None:
            return ChainVerdict(
                True,
                self.checked,
                self.prev_hash,
                checkpoints=len(self.checkpoints.checkpoints),
                last_checkpoint=self.last,
            )
        return ChainVerdict(
            False,
            self.checked,
            self.prev_hash,
            broken.message,
            broken.first_bad_seq,
            broken.bad_range,
            len(self.checkpoints.checkpoints),
            self.last,
        )

    def check_sealing(self, event: AuditEvent) -> None:
        """Plain SHA-256 only at the chain's beginning, before any keyed event and before the
        bound the checkpoints recorded."""
        if event.key_id != LEGACY_KEY_ID:
            self.keyed_seen = True
            return
        if self.keyed_seen:
            raise _Broken(
                Message(
                    N_(
                        "event #%(seq)s is sealed with plain SHA-256 after events sealed with "
                        "the audit key: it was written or rewritten behind the application"
                    ),
                    seq=event.seq,
                ),
                event.seq,
            )
        bound = self.legacy_bound
        if bound is not None and event.seq > bound.legacy_until:
            raise _Broken(
                Message(
                    N_(
                        "event #%(seq)s is sealed with plain SHA-256, but the checkpoint of "
                        "%(at)s recorded sealing with the audit key from #%(from)s on: the "
                        "chain was rewritten"
                    ),
                    seq=event.seq,
                    at=bound.at,
                    **{"from": bound.legacy_until + 1},
                ),
                event.seq,
            )

    def check_checkpoints(self, event: AuditEvent) -> None:
        """The event is the one every checkpoint of its sequence recorded."""
        for checkpoint in self.at_seq.get(event.seq, ()):
            if checkpoint.hash != event.hash:
                since = (
                    Message(N_("checkpoint #%(seq)s"), seq=self.matched_seq)
                    if self.matched_seq
                    else Message(N_("the beginning"))
                )
                raise _Broken(
                    Message(
                        N_(
                            "event #%(seq)s is not the event the checkpoint of %(at)s recorded "
                            "(hash %(found)s… instead of %(recorded)s…): events "
                            "#%(first)s..#%(seq)s were rewritten since %(since)s"
                        ),
                        seq=event.seq,
                        at=checkpoint.at,
                        found=event.hash[:12],
                        recorded=checkpoint.hash[:12],
                        first=self.matched_seq + 1,
                        since=since,
                    ),
                    self.matched_seq + 1,
                    (self.matched_seq + 1, event.seq),
                )
            self.matched_seq = event.seq


def _check_event(walk: _Walk, event: AuditEvent, ring: AuditKeyRing) -> None:
    """Sequence, link, sealing and checkpoints of the next event of the walk."""
    expected_seq = walk.last_seq + 1
    if event.seq != expected_seq:
        raise _Broken(
            Message(
                N_(
                    "event #%(seq)s (id %(id)s) found where #%(expected)s was expected: "
                    "an event was deleted, inserted or reordered"
                ),
                seq=event.seq,
                id=event.id,
                expected=expected_seq,
            ),
            event.seq,
        )
    if event.prev_hash != walk.prev_hash:
        raise _Broken(
            Message(
                N_(
                    "event #%(seq)s does not link to the event before it: "
                    "an event before it was removed or replaced"
                ),
                seq=event.seq,
            ),
            event.seq,
        )
    walk.check_sealing(event)
    try:
        sealed = hmac.compare_digest(event_hash(event, ring), event.hash)
    except AuditKeyUnknown:
        raise _Broken(
            Message(
                N_(
                    "event #%(seq)s is sealed with audit key %(key)s, which is not in the key "
                    "ring: it was forged, or the key was removed from the ring"
                ),
                seq=event.seq,
                key=repr(event.key_id),
            ),
            event.seq,
        ) from None
    if not sealed:
        raise _Broken(
            Message(
                N_("event #%(seq)s was modified after it was written (hash mismatch)"),
                seq=event.seq,
            ),
            event.seq,
        )
    walk.check_checkpoints(event)
    walk.prev_hash = event.hash
    walk.checked += 1


def _check_end(walk: _Walk, head: AuditChainHead) -> None:
    """The chain ends where the head and the checkpoints say it does."""
    checked = walk.last_seq
    if head.last_seq < checked:
        # A well-formed event appended behind the application's back: the head never saw it.
        raise _Broken(
            Message(
                N_(
                    "event #%(seq)s is beyond the head (#%(head)s): events were inserted after "
                    "the last recorded one"
                ),
                seq=head.last_seq + 1,
                head=head.last_seq,
            ),
            head.last_seq + 1,
        )
    if head.last_seq == checked and head.last_hash != walk.prev_hash:
        raise _Broken(
            Message(
                N_("event #%(seq)s does not match the hash the head recorded: it was replaced"),
                seq=checked,
            ),
            checked,
        )
    if head.last_seq != checked:
        raise _Broken(
            Message(
                N_(
                    "the chain ends at #%(seq)s but the head records #%(head)s: the newest "
                    "events were deleted"
                ),
                seq=checked,
                head=head.last_seq,
            ),
            checked + 1,
            (checked + 1, head.last_seq),
        )
    beyond = [c for c in walk.checkpoints.checkpoints if c.seq > checked]
    if beyond:
        latest = max(beyond, key=lambda c: c.seq)
        raise _Broken(
            Message(
                N_(
                    "the chain ends at #%(seq)s but the checkpoint of %(at)s recorded "
                    "#%(recorded)s: events #%(first)s..#%(recorded)s were deleted (truncation) "
                    "since then"
                ),
                seq=checked,
                at=latest.at,
                recorded=latest.seq,
                first=checked + 1,
            ),
            checked + 1,
            (checked + 1, latest.seq),
        )
    if walk.checkpoints.problems:
        seq, problem = walk.checkpoints.problems[0]
        raise _Broken(Message(N_("checkpoint file: %(problem)s"), problem=problem), seq)


def _iter_events(
    chunk: int = 5000, using: str = DEFAULT_DB_ALIAS, after_id: int = 0
) -> Iterator[AuditEvent]:
    last_id = after_id
    while True:
        rows = list(AuditEvent.objects.using(using).filter(id__gt=last_id).order_by("id")[:chunk])
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


def _start_at(walk: _Walk, since_seq: int, ring: AuditKeyRing, using: str) -> int:
    """Start the walk after the anchor, event `since_seq - 1`, once its own seal holds; the
    id to walk on from."""
    anchor = AuditEvent.objects.using(using).filter(seq=since_seq - 1).first()
    if anchor is None:
        raise _Broken(
            Message(
                N_("event #%(seq)s, where the verification starts, is missing"),
                seq=since_seq - 1,
            ),
            since_seq - 1,
        )
    walk.skipped = anchor.seq - 1
    walk.prev_hash = anchor.prev_hash
    _check_event(walk, anchor, ring)
    return anchor.id


def audit_chain_verify(
    *, checkpoints: Path | None = None, using: str = DEFAULT_DB_ALIAS, since_seq: int = 1
) -> ChainVerdict:
    """Walk the chain in insertion order (primary key) and check sequence, links and MACs,
    then the head, then the chain against the checkpoints written outside the database
    (`checkpoints`: another copy of the checkpoint file than the configured one; `using`:
    another database, such as a backup opened for verification).

    `since_seq` > 1 walks only from event `since_seq - 1` (whose seal is checked, and which
    the next event must link to) to the head: what a batch's post-close verification needs to
    know about its own events, at a cost that does not grow with the whole chain. The whole
    chain is verified by `closeout audit verify` and the audit page."""
    ring = audit_key_ring()
    walk = _Walk(audit_checkpoints_read(checkpoints, ring))
    try:
        after_id = _start_at(walk, since_seq, ring, using) if since_seq > 1 else 0
        for event in _iter_events(using=using, after_id=after_id):
            _check_event(walk, event, ring)
        _check_end(walk, AuditChainHead.objects.using(using).get(pk=1))
    except _Broken as broken:
        return walk.verdict(broken)
    return walk.verdict()
