"""Verifying an evidence pack (archive_pack.py writes them): the manifest, every file's SHA-256,
every audit event's hash and link up to the head the manifest names, and (live) that head and
the manifest against the database's chain.
"""

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext_noop

from closeout.audit.keys import AuditKeyUnknown
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent, AuditObject
from closeout.audit.services import CANONICAL_TIME_FORMAT, event_hash
from closeout.core.errors import InvalidInput
from closeout.reports.archive_pack import MANIFEST, PACK_FILES, PACK_FORMAT


@dataclass
class PackVerdict:
    problems: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    files_checked: int = 0
    events_checked: int = 0
    live_checked: bool = False
    period: str = ""

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> str:
        return self.problems[0] if self.problems else ""

    def add(self, kind: str, message: str) -> None:
        self.kinds.append(kind)
        self.problems.append(message)


class _PackReader:
    def __init__(self, source: Path | IO[bytes]) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.directory: Path | None = None
        if isinstance(source, Path) and source.is_dir():
            self.directory = source
            return
        if isinstance(source, Path) and not source.exists():
            raise InvalidInput(
                gettext_noop("%(path)s does not exist"),
                params={"path": source},
                details={"field": "pack"},
            )
        try:
            self.zip = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as exc:
            if isinstance(source, Path):
                raise InvalidInput(
                    gettext_noop("%(path)s is neither a zip file nor a directory"),
                    params={"path": source},
                    details={"field": "pack"},
                ) from exc
            raise InvalidInput(
                gettext_noop("the upload is neither a zip file nor a directory"),
                params={},
                details={"field": "pack"},
            ) from exc

    def names(self) -> set[str]:
        if self.zip is not None:
            return {n for n in self.zip.namelist() if not n.endswith("/")}
        assert self.directory is not None  # noqa: S101
        return {
            str(p.relative_to(self.directory)) for p in self.directory.rglob("*") if p.is_file()
        }

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        assert self.directory is not None  # noqa: S101
        return (self.directory / name).read_bytes()


def _manifest_problem(manifest: Any) -> str:
    if not isinstance(manifest, dict):
        return "manifest.json is not a JSON object"
    if manifest.get("format") != PACK_FORMAT:
        return f"manifest.json: format is not {PACK_FORMAT}"
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(PACK_FILES):
        return "manifest.json: 'files' must list exactly " + ", ".join(PACK_FILES)
    for name, entry in files.items():
        if not isinstance(entry, dict) or not _is_sha256(entry.get("sha256")):
            return f"manifest.json: {name} has no well-formed sha256"
    head = manifest.get("chain_head")
    if (
        not isinstance(head, dict)
        or not isinstance(head.get("seq"), int)
        or not _is_sha256(head.get("hash"))
    ):
        return "manifest.json: chain_head needs an integer seq and a sha256 hash"
    audit = manifest.get("audit")
    if not isinstance(audit, dict) or not (
        audit.get("first_seq") is None or isinstance(audit.get("first_seq"), int)
    ):
        return "manifest.json: audit.first_seq must be an integer or null"
    period = manifest.get("period")
    if not isinstance(period, dict) or not isinstance(period.get("label"), str):
        return "manifest.json: period needs a label"
    return ""


def _is_sha256(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def event_from_json(line: dict[str, Any]) -> AuditEvent:
    """A line of audit.jsonl as an (unsaved) audit event, to recompute its hash."""
    return AuditEvent(
        seq=line["seq"],
        at=datetime.strptime(line["at"], CANONICAL_TIME_FORMAT).replace(tzinfo=UTC),
        actor_id=line["actor_id"],
        actor_name=line["actor_name"],
        action=line["action"],
        object_type=line["object_type"],
        object_id=line["object_id"],
        object_repr=line["object_repr"],
        data=line["data"],
        reason=line["reason"],
        request_id=line["request_id"],
        # Present for events sealed with an audit key; absent for plain SHA-256 ones.
        http_request_id=line.get("http_request_id", ""),
        key_id=line.get("key_id", ""),
        prev_hash=line["prev_hash"],
        hash=line["hash"],
    )


def _redacted_from(line: dict[str, Any]) -> AuditEvent:
    for name in ("prev_hash", "hash"):
        if not _is_sha256(line[name]) and line[name] != "":
            raise ValueError(f"{name} is not a SHA-256")
    return AuditEvent(
        seq=int(line["seq"]),
        key_id=str(line.get("key_id", "")),
        prev_hash=line["prev_hash"],
        hash=line["hash"],
    )


def _check_chain(raw: bytes, manifest: dict[str, Any], verdict: PackVerdict) -> None:
    """Every event's hash recomputed with the audit chain's own function, the links between
    them, no gap in the sequence, and the last one being the head the manifest names."""
    expected = manifest["audit"].get("first_seq")
    prev: AuditEvent | None = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        verdict.add("event_edited", "audit.jsonl is not UTF-8 text")
        return
    # Only a company pack may reduce other objects' events to their links.
    redacting = bool(manifest.get("company"))
    shown = 0
    for number, row in enumerate(text.splitlines(), start=1):
        try:
            line = json.loads(row)
            redacted = isinstance(line, dict) and line.get("redacted") is True
            if redacted and not redacting:
                verdict.add(
                    "event_edited",
                    f"audit.jsonl line {number}: a redacted event in a pack of every company",
                )
                return
            event = _redacted_from(line) if redacted else event_from_json(line)
        except (ValueError, KeyError, TypeError) as exc:
            verdict.add("event_edited", f"audit.jsonl line {number} is not an audit event ({exc})")
            return
        problem = _link_problem(number, event, prev, expected, redacted=redacted)
        if problem is not None:
            verdict.add(*problem)
            return
        verdict.events_checked += 1
        shown += 0 if redacted else 1
        prev, expected = event, event.seq + 1
    problem = _end_problem(manifest, prev, shown, redacting=redacting)
    if problem is not None:
        verdict.add(*problem)


def _link_problem(
    number: int, event: AuditEvent, prev: AuditEvent | None, expected: int | None, *, redacted: bool
) -> tuple[str, str] | None:
    """(kind, message) of what is wrong with one event of audit.jsonl and its link to the one
    before it, or None: its place in the sequence, its seal and its link."""
    if expected is not None and event.seq > expected:
        return (
            "event_removed",
            f"audit.jsonl: event #{expected} is missing (found #{event.seq} after "
            f"#{expected - 1}): an event was removed",
        )
    if expected is not None and event.seq < expected:
        return (
            "event_edited",
            f"audit.jsonl line {number}: event #{event.seq} found where #{expected} was "
            "expected: events were inserted or reordered",
        )
    if prev is not None and prev.key_id and not event.key_id:
        return (
            "event_edited",
            f"audit.jsonl: event #{event.seq} is sealed with plain SHA-256 after events "
            "sealed with the audit key: it was rewritten",
        )
    try:
        # A redacted event's content is not in the pack: its links are checked below.
        sealed = redacted or event_hash(event) == event.hash
    except AuditKeyUnknown as exc:
        return ("key_unknown", f"audit.jsonl: event #{event.seq}: {exc.message}")
    if not sealed:
        return (
            "event_edited",
            f"audit.jsonl: event #{event.seq} was edited (its hash does not match its fields)",
        )
    if prev is not None and event.prev_hash != prev.hash:
        return (
            "event_edited",
            f"audit.jsonl: event #{event.seq} does not link to #{prev.seq}: "
            f"#{prev.seq} was replaced",
        )
    return None


def _end_problem(
    manifest: dict[str, Any], last: AuditEvent | None, shown: int, *, redacting: bool
) -> tuple[str, str] | None:
    """(kind, message) of what is wrong with the segment as a whole, or None: the events shown
    in full against those the manifest announces, and the last event against the head."""
    head = manifest["chain_head"]
    if redacting and shown != manifest["audit"].get("document_events"):
        return (
            "event_removed",
            f"audit.jsonl shows {shown} events in full, the manifest announces "
            f"{manifest['audit'].get('document_events')} about the pack's documents: events "
            "about them were redacted or removed",
        )
    if manifest["audit"].get("first_seq") is None:
        if last is not None:
            return ("event_edited", "audit.jsonl holds events the manifest does not announce")
        return None
    if last is None or last.seq != head["seq"]:
        shown_last = f"#{last.seq}" if last is not None else "nothing"
        return (
            "event_removed",
            f"audit.jsonl ends at {shown_last} but the chain head at export was #{head['seq']}: "
            "the newest events were removed",
        )
    if last.hash != head["hash"]:
        return (
            "head_mismatch",
            f"audit.jsonl: the last event #{last.seq} does not have the head hash of the manifest",
        )
    return None


def _check_live(manifest: dict[str, Any], manifest_sha256: str, verdict: PackVerdict) -> None:
    """The pack's head against the live chain, and the manifest against its export record."""
    verdict.live_checked = True
    head = manifest["chain_head"]
    live = AuditChainHead.objects.get(pk=1)
    if live.last_seq < head["seq"]:
        verdict.add(
            "head_mismatch",
            f"the pack's chain head #{head['seq']} is beyond the live chain's head "
            f"#{live.last_seq}: it comes from another database or the chain was cut",
        )
        return
    stored = AuditEvent.objects.filter(seq=head["seq"]).values_list("hash", flat=True).first()
    if head["seq"] > 0 and stored != head["hash"]:
        verdict.add(
            "head_mismatch",
            f"head mismatch: event #{head['seq']} in the live chain has hash "
            f"{(stored or 'none')[:12]}…, the pack says {head['hash'][:12]}…",
        )
        return
    recorded = AuditEvent.objects.filter(
        action=AuditAction.ARCHIVE_PACK_EXPORTED,
        object_type=AuditObject.ARCHIVE_PACK,
        object_id=str(manifest["period"]["label"]),
    ).values_list("data", flat=True)
    if not any(d.get("manifest_sha256") == manifest_sha256 for d in recorded):
        verdict.add(
            "manifest_changed",
            "manifest.json is not the one the audit log recorded when a pack of "
            f"{manifest['period']['label']} was exported: it was changed or never exported here",
        )


def archive_pack_verify(source: Path | IO[bytes], *, live: bool = True) -> PackVerdict:
    """Check a pack: manifest well-formed, no file missing or added, every audit event and link,
    every file's SHA-256, then (live) the head and the manifest against the database."""
    reader = _PackReader(source)
    verdict = PackVerdict()
    names = reader.names()
    if MANIFEST not in names:
        verdict.add("file_missing", "file missing: manifest.json")
        return verdict
    raw_manifest = reader.read(MANIFEST)
    try:
        manifest = json.loads(raw_manifest.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        verdict.add("manifest_invalid", f"manifest.json is not valid JSON ({exc})")
        return verdict
    problem = _manifest_problem(manifest)
    if problem:
        verdict.add("manifest_invalid", problem)
        return verdict
    verdict.period = manifest["period"]["label"]
    for name in PACK_FILES:
        if name not in names:
            verdict.add("file_missing", f"file missing: {name}")
    for name in sorted(names - {MANIFEST, *PACK_FILES}):
        verdict.add("extra_file", f"extra file: {name} is not part of the pack")
    if "audit.jsonl" in names:
        _check_chain(reader.read("audit.jsonl"), manifest, verdict)
    for name in PACK_FILES:
        if name not in names:
            continue
        digest = hashlib.sha256(reader.read(name)).hexdigest()
        verdict.files_checked += 1
        if digest != manifest["files"][name]["sha256"]:
            verdict.add(
                "file_changed",
                f"file changed: {name} does not match its SHA-256 in the manifest "
                f"({digest[:12]}… instead of {manifest['files'][name]['sha256'][:12]}…)",
            )
    if live and verdict.intact:
        _check_live(manifest, hashlib.sha256(raw_manifest).hexdigest(), verdict)
    return verdict
