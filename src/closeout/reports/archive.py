"""Archive (归档, S15): final archiving of long-closed documents, and evidence packs per period.

The archive job moves documents that have been closed for longer than the retention of their
close policy (`ClosePolicy.archive_after_days`, counted from the close date 结案日期) to
`archived` (最终结案): final and read-only. It works like the sweep: per type and policy, in
id-ordered chunks, one transaction per chunk (FOR UPDATE SKIP LOCKED on PostgreSQL), lines and
headers updated in bulk and one DOCUMENT_ARCHIVED audit event per document in the same
transaction. Safe to interrupt and to run twice.

An evidence pack holds, for a period, the documents archived or closed whose close date lies in
it (both states: a period can be exported before the archive job reached it; the close state is
a column), their lines, their business events, the audit events about them with the chain
segment that links them to the chain's head, and a manifest with each file's SHA-256 and the
head at export time. The manifest's own hash is written into the audit chain
(ARCHIVE_PACK_EXPORTED), so a pack verified against the live database is anchored in the chain.

The CSV files are evidence and hold the database's values unchanged: no formula neutralising
(closeout.core.exports prefixes an apostrophe to cells starting with = + - @, which would alter
the evidence and its hashes). Open them through a spreadsheet's text import, not by double-click.
"""

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Min, Q, QuerySet
from django.http import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, require_company_wide, require_unit_wide
from closeout.audit.keys import AuditKeyUnknown
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent, AuditObject
from closeout.audit.services import (
    CANONICAL_TIME_FORMAT,
    SYSTEM_ACTOR,
    AuditEntry,
    audit_append,
    audit_record,
    canonical_payload,
    event_hash,
)
from closeout.closing.models import ArchiveRun, ClosePolicy
from closeout.closing.policies import policy_partitions
from closeout.closing.states import Action
from closeout.closing.transitions import documents_state_set, lines_state_set
from closeout.core.errors import InvalidInput
from closeout.core.exports import file_download
from closeout.core.inputs import check_ascii_digits, check_date
from closeout.core.models import Company
from closeout.core.sql import ids_param
from closeout.documents.models import BusinessEvent, CloseState, Document, Line
from closeout.documents.types import all_specs, spec_for

ARCHIVE_REASON = "retention after close passed"
PACK_FORMAT = "closeout-archive-pack/1"
MANIFEST = "manifest.json"
PACK_FILES = ("documents.csv", "lines.csv", "events.csv", "audit.jsonl")
PACK_STATES = (CloseState.ARCHIVED, CloseState.CLOSED)


# --- the archive job --------------------------------------------------------------------------


@dataclass
class ArchiveTally:
    archived: int = 0
    lines_archived: int = 0
    retention_off: int = 0
    per_policy: list[dict[str, Any]] = field(default_factory=list)


def policy_scope_label(policy: ClosePolicy) -> str:
    return f"{policy.doc_type} @ {policy.org_unit.code if policy.org_unit else '*'}"


def archive_cutoff(policy: ClosePolicy, today: date) -> date | None:
    """The latest close date that is due for archiving today; None: the policy never archives."""
    if policy.archive_after_days is None:
        return None
    return today - timedelta(days=policy.archive_after_days)


def _due(doc_type: str, scope: Q, cutoff: date) -> QuerySet[Document]:
    return Document.objects.filter(
        doc_type=doc_type, close_state=CloseState.CLOSED, close_date__lte=cutoff
    ).filter(scope)


def _candidates(
    doc_type: str, scope: Q, cutoff: date, last_id: int, dry_run: bool
) -> QuerySet[Document]:
    qs = _due(doc_type, scope, cutoff).filter(pk__gt=last_id).order_by("pk")
    if not dry_run and connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",), no_key=True)
    return qs


def _archive_chunk(
    ids: list[int], policy: ClosePolicy, *, now: datetime, run_tag: str
) -> list[AuditEntry]:
    """Archive a chunk of locked, closed documents: lines and headers in one UPDATE each."""
    # The headers are re-checked in each statement, so only documents still closed change.
    lines = Line.objects.filter(
        document_id__in=ids_param(ids),
        close_state=CloseState.CLOSED,
        document__close_state=CloseState.CLOSED,
    )
    counts = dict(
        lines.order_by()
        .values("document_id")
        .annotate(n=Count("id"))
        .values_list("document_id", "n")
    )
    lines_state_set(lines, Action.ARCHIVE)
    documents_state_set(ids, Action.ARCHIVE, now=now)
    rows = (
        Document.objects.filter(
            pk__in=ids_param(ids), close_state=CloseState.ARCHIVED, state_changed_at=now
        )
        .order_by("pk")
        .values_list("pk", "doc_type", "number", "close_date")
    )
    return [
        AuditEntry(
            action=AuditAction.DOCUMENT_ARCHIVED,
            object_type=AuditObject.DOCUMENT,
            object_id=pk,
            object_repr=f"{doc_type} {number}",
            data={
                "from": CloseState.CLOSED,
                "to": CloseState.ARCHIVED,
                "close_date": close_date,
                "retention_days": policy.archive_after_days,
                "policy": policy_scope_label(policy),
                "lines_archived": counts.get(pk, 0),
            },
            reason=ARCHIVE_REASON,
            request_id=run_tag,
        )
        for pk, doc_type, number, close_date in rows
    ]


def _archive_policy(
    doc_type: str,
    policy: ClosePolicy,
    scope: Q,
    cutoff: date,
    *,
    actor: AbstractBaseUser | None,
    dry_run: bool,
    chunk_size: int,
    run_tag: str,
) -> tuple[int, int]:
    """Archive what one policy governs; returns (documents, lines) archived or due."""
    if dry_run:
        due = _due(doc_type, scope, cutoff)
        return due.count(), Line.objects.filter(
            document__in=due.values("pk"), close_state=CloseState.CLOSED
        ).count()
    documents = lines = 0
    last_id = 0
    while True:
        with transaction.atomic():
            ids = list(
                _candidates(doc_type, scope, cutoff, last_id, dry_run).values_list("pk", flat=True)[
                    :chunk_size
                ]
            )
            if not ids:
                return documents, lines
            last_id = ids[-1]
            now = timezone.now()
            entries = _archive_chunk(ids, policy, now=now, run_tag=run_tag)
            audit_append(actor=actor, entries=entries, at=now)
            documents += len(entries)
            lines += sum(int(e.data["lines_archived"]) for e in entries)


def archive_run(
    *,
    actor: AbstractBaseUser | None = None,
    doc_type: str | None = None,
    dry_run: bool = False,
    chunk_size: int = 2000,
    today: date | None = None,
) -> ArchiveRun:
    """Archive every closed document whose policy's retention after its close date has passed.
    Without an actor it runs as the system (the daily schedule); a person needs
    `policy.manage` (archiving applies the retention of the close policies and is final)."""
    specs = [spec_for(doc_type)] if doc_type else all_specs()
    if chunk_size <= 0:
        raise InvalidInput(
            gettext_noop("chunk size must be at least 1, got %(size)s"),
            params={"size": chunk_size},
            details={"field": "chunk_size"},
        )
    if actor is not None:
        require(actor, Perm.POLICY_MANAGE, what="the archive (归档)")
    day = today or timezone.localdate()
    run = ArchiveRun.objects.create(
        started_at=timezone.now(),
        doc_type=doc_type or "",
        dry_run=dry_run,
        actor_name=actor.get_username() if actor is not None else SYSTEM_ACTOR,
    )
    tally = ArchiveTally()
    for spec in specs:
        for policy, scope in policy_partitions(spec.code):
            cutoff = archive_cutoff(policy, day)
            if cutoff is None:
                off = Document.objects.filter(doc_type=spec.code, close_state=CloseState.CLOSED)
                tally.retention_off += off.filter(scope).count()
                continue
            documents, lines = _archive_policy(
                spec.code,
                policy,
                scope,
                cutoff,
                actor=actor,
                dry_run=dry_run,
                chunk_size=chunk_size,
                run_tag=f"archive-run:{run.pk}",
            )
            tally.archived += documents
            tally.lines_archived += lines
            tally.per_policy.append(
                {
                    "policy": policy_scope_label(policy),
                    "retention_days": policy.archive_after_days,
                    "closed_on_or_before": cutoff.isoformat(),
                    "archived": documents,
                }
            )
    run.finished_at = timezone.now()
    run.archived, run.lines_archived = tally.archived, tally.lines_archived
    run.retention_off, run.per_policy = tally.retention_off, tally.per_policy
    run.save()
    return run


# --- selectors for the page -----------------------------------------------------------------


@dataclass(frozen=True)
class RetentionRow:
    policy: ClosePolicy
    scope: str
    retention_days: int | None
    closed_due: int
    archived: int


def archive_retention_overview(today: date | None = None) -> list[RetentionRow]:
    """Per policy: its retention, the closed documents now due, and those already archived."""
    day = today or timezone.localdate()
    rows: list[RetentionRow] = []
    for spec in all_specs():
        for policy, scope in policy_partitions(spec.code):
            cutoff = archive_cutoff(policy, day)
            states = Document.objects.filter(doc_type=spec.code).filter(scope)
            rows.append(
                RetentionRow(
                    policy=policy,
                    scope=policy_scope_label(policy),
                    retention_days=policy.archive_after_days,
                    closed_due=_due(spec.code, scope, cutoff).count() if cutoff else 0,
                    archived=states.filter(close_state=CloseState.ARCHIVED).count(),
                )
            )
    return rows


def archive_runs_recent(limit: int = 10) -> list[ArchiveRun]:
    return list(ArchiveRun.objects.order_by("-started_at", "-pk")[:limit])


def archive_packs_exported(limit: int = 10) -> list[AuditEvent]:
    """The latest pack exports, as the audit chain recorded them."""
    return list(
        AuditEvent.objects.filter(action=AuditAction.ARCHIVE_PACK_EXPORTED).order_by("-seq")[:limit]
    )


# --- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def label(self) -> str:
        if self.start.day == 1 and self.end == _month_end(self.start):
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def _month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def period_parse(text: str) -> Period:
    """'2026-03' (a month) or '2026-03-01..2026-03-15' (a date range, both days included)."""
    value = text.strip()
    check_ascii_digits(value, field="period")
    try:
        if ".." in value:
            first, last = (date.fromisoformat(part.strip()) for part in value.split("..", 1))
        else:
            first = datetime.strptime(value, "%Y-%m").date()  # noqa: DTZ007 (a month, no time)
            check_date(first, field="period")
            last = _month_end(first)
    except ValueError as exc:
        raise InvalidInput(
            gettext_noop(
                "period '%(text)s' is neither a month (YYYY-MM) nor a range "
                "(YYYY-MM-DD..YYYY-MM-DD)"
            ),
            params={"text": text},
            details={"field": "period"},
        ) from exc
    check_date(first, field="period")
    check_date(last, field="period")
    if last < first:
        raise InvalidInput(
            gettext_noop("period '%(text)s' ends before it starts"),
            params={"text": text},
            details={"field": "period"},
        )
    return Period(first, last)


# --- writing a pack ---------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


DOCUMENT_COLUMNS = (
    "id", "doc_type", "number", "org_unit__code", "partner__code", "document_date",
    "expected_date", "currency", "exchange_rate", "total_amount", "total_amount_company",
    "source_system", "external_id", "close_state", "close_kind", "close_reason", "close_remark",
    "close_date", "closed_by__username", "closed_at", "released_value",
    "released_value_company", "state_changed_at", "version",
)  # fmt: skip
LINE_COLUMNS = (
    "document_id", "document__doc_type", "document__number", "line_no", "item__code",
    "description", "unit", "unit_price", "planned_qty", "planned_amount", "fulfilled_qty",
    "returns_open_qty", "invoiced_qty", "invoiced_amount", "settled_amount", "counted_qty",
    "adjusted_qty", "actual_cost", "close_state", "close_kind", "close_reason",
    "closed_by__username", "closed_at", "released_qty", "released_value",
    "released_value_company",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "document_id", "document__doc_type", "document__number", "line__line_no", "kind",
    "source_system", "external_id", "quantity", "amount", "occurred_at", "status",
    "quarantine_reason", "received_at", "applied_at", "posted_by__username", "note",
)  # fmt: skip


class _PackSink:
    """Members of a pack, in a zip file or a directory."""

    def __init__(self, out: Path | IO[bytes]) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.directory: Path | None = None
        if isinstance(out, Path) and out.suffix.lower() != ".zip":
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise InvalidInput(
                    gettext_noop("%(path)s exists and is not an empty directory"),
                    params={"path": out},
                    details={"field": "out"},
                )
            out.mkdir(parents=True, exist_ok=True)
            self.directory = out
        else:
            self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)

    def open(self, name: str) -> IO[bytes]:
        if self.zip is not None:
            return self.zip.open(name, "w")
        assert self.directory is not None  # noqa: S101
        return (self.directory / name).open("wb")

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _write_member(sink: _PackSink, name: str, lines: Iterable[str]) -> dict[str, Any]:
    """Write a text member in UTF-8; returns its manifest entry (SHA-256, bytes, lines)."""
    sha256, size, rows = hashlib.sha256(), 0, 0
    with sink.open(name) as target:
        for line in lines:
            data = line.encode("utf-8")
            sha256.update(data)
            size += len(data)
            rows += 1
            target.write(data)
    return {"sha256": sha256.hexdigest(), "bytes": size, "rows": rows}


def _csv_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header line, then one line per row. The first line starts with a byte-order mark,
    so spreadsheets read the Chinese text as UTF-8; the header is not counted as a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.replace("__", ".") for c in columns])
    header = "\ufeff" + buffer.getvalue()
    yield header
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(v) for v in row])
        yield buffer.getvalue()


def _pack_documents(period: Period, company: Company | None = None) -> QuerySet[Document]:
    found = Document.objects.filter(
        close_state__in=PACK_STATES, close_date__gte=period.start, close_date__lte=period.end
    )
    return found if company is None else found.filter(company=company)


def _chunked(values: list[str], size: int = 1000) -> Iterator[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _first_seq(document_ids: list[int]) -> int | None:
    """The first audit event about any of the documents: where the pack's segment starts."""
    firsts = [
        AuditEvent.objects.filter(object_type=AuditObject.DOCUMENT, object_id__in=part).aggregate(
            m=Min("seq")
        )["m"]
        for part in _chunked([str(i) for i in document_ids])
    ]
    known = [seq for seq in firsts if seq is not None]
    return min(known) if known else None


def audit_event_json(event: AuditEvent) -> dict[str, Any]:
    """An event as a line of audit.jsonl: exactly the payload its hash covers, and the hash."""
    return {**canonical_payload(event), "hash": event.hash}


def redacted_event_json(event: AuditEvent) -> dict[str, Any]:
    """An event of a company pack that is not about the company's documents: only what links
    the chain (sequence, hashes, key id), none of its content."""
    return {
        "seq": event.seq,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "key_id": event.key_id,
        "redacted": True,
    }


def _segment(
    first: int | None, last: int, shown: set[str] | None = None, chunk: int = 5000
) -> Iterator[str]:
    """The chain from `first` to `last`; with `shown` (document ids of a company pack), the
    events about other objects are redacted to their links."""
    if first is None:
        return
    after = first - 1
    while after < last:
        rows = list(AuditEvent.objects.filter(seq__gt=after, seq__lte=last).order_by("seq")[:chunk])
        if not rows:
            return
        for event in rows:
            whole = shown is None or (
                event.object_type == AuditObject.DOCUMENT and str(event.object_id) in shown
            )
            line = audit_event_json(event) if whole else redacted_event_json(event)
            yield json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n"
        after = rows[-1].seq


@dataclass(frozen=True)
class PackResult:
    period: Period
    manifest: dict[str, Any]
    manifest_sha256: str
    event: AuditEvent


def archive_pack_export(
    *,
    actor: AbstractBaseUser,
    period: Period,
    out: Path | IO[bytes],
    company: Company | None = None,
) -> PackResult:
    """Write the evidence pack of a period to `out` (a .zip path, a directory path, or a
    binary file object for a zip) and record the export in the audit chain. With `company`,
    only that company's documents, and of the chain segment only the events about them in
    full (the others reduced to their links, so the segment still verifies)."""
    what = f"the evidence pack of {period.label}"
    if company is None:
        # A whole pack's audit.jsonl holds every unit's events: company-wide auditors only.
        require_company_wide(actor, Perm.AUDIT_VIEW, what=what)
    else:
        require_unit_wide(actor, Perm.AUDIT_VIEW, company.unit, what=f"{what} of {company.code}")
    created_at = timezone.now()
    outermost = not connection.in_atomic_block
    sink = _PackSink(out)
    try:
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                # One consistent view of documents and chain for the whole export.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            files, audit = _write_pack_files(sink, period, company)
        manifest = {
            "format": PACK_FORMAT,
            "period": {
                "label": period.label,
                "from": period.start.isoformat(),
                "to": period.end.isoformat(),
            },
            "selection": "documents archived or closed whose close date lies in the period"
            + (f", of company {company.code}" if company is not None else ""),
            "company": company.code if company is not None else None,
            "created_at": created_at.astimezone(UTC).isoformat(),
            "created_by": actor.get_username(),
            "files": files,
            "audit": audit,
            "chain_head": {"seq": audit["head_seq"], "hash": audit["head_hash"]},
            "note": "CSV values are the database's, unchanged (no formula neutralising): "
            "open them through a text import.",
        }
        body = (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
        with sink.open(MANIFEST) as target:
            target.write(body)
    finally:
        sink.close()
    manifest_sha256 = hashlib.sha256(body).hexdigest()
    with transaction.atomic():
        event = audit_record(
            actor=actor,
            action=AuditAction.ARCHIVE_PACK_EXPORTED,
            object_type=AuditObject.ARCHIVE_PACK,
            object_id=period.label,
            object_repr=f"evidence pack {period.label}",
            data={
                "period": manifest["period"],
                "manifest_sha256": manifest_sha256,
                "chain_head": manifest["chain_head"],
                "rows": {name: files[name]["rows"] for name in PACK_FILES},
                "company": manifest["company"],
            },
        )
    return PackResult(period, manifest, manifest_sha256, event)


def archive_pack_download(
    *, actor: AbstractBaseUser, period: Period, company: Company | None = None
) -> HttpResponseBase:
    """The evidence pack of a period (of one company, or all) as a .zip download (the archive
    page and the API)."""
    prefix = f"closeout-evidence-{company.code}-" if company is not None else "closeout-evidence-"
    return file_download(
        lambda out: archive_pack_export(actor=actor, period=period, out=out, company=company),
        filename=f"{prefix}{period.label.replace('..', '_')}.zip",
        content_type="application/zip",
    )


def _write_pack_files(
    sink: _PackSink, period: Period, company: Company | None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    head = AuditChainHead.objects.get(pk=1)
    documents = _pack_documents(period, company).order_by("pk")
    ids = list(documents.values_list("pk", flat=True))
    in_pack = _pack_documents(period, company).values("pk")
    tables: list[tuple[str, Sequence[str], QuerySet[Any]]] = [
        ("documents.csv", DOCUMENT_COLUMNS, documents),
        (
            "lines.csv",
            LINE_COLUMNS,
            Line.objects.filter(document_id__in=in_pack).order_by("document_id", "line_no"),
        ),
        (
            "events.csv",
            EVENT_COLUMNS,
            BusinessEvent.objects.filter(document_id__in=in_pack).order_by("document_id", "pk"),
        ),
    ]
    files: dict[str, dict[str, Any]] = {}
    for name, columns, qs in tables:
        rows = qs.values_list(*columns).iterator(2000)
        files[name] = _write_member(sink, name, _csv_lines(columns, rows))
        files[name]["rows"] -= 1  # the header line
    first = _first_seq(ids)
    shown = {str(i) for i in ids} if company is not None else None
    files["audit.jsonl"] = _write_member(sink, "audit.jsonl", _segment(first, head.last_seq, shown))
    document_events = sum(
        AuditEvent.objects.filter(object_type=AuditObject.DOCUMENT, object_id__in=part).count()
        for part in _chunked([str(i) for i in ids])
    )
    audit = {
        "first_seq": first,
        "head_seq": head.last_seq,
        "head_hash": head.last_hash,
        "events": files["audit.jsonl"]["rows"],
        "document_events": document_events,
    }
    return files, audit


# --- verifying a pack ---------------------------------------------------------------------------


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


def _event_from(line: dict[str, Any]) -> AuditEvent:
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
    head = manifest["chain_head"]
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
            event = _redacted_from(line) if redacted else _event_from(line)
        except (ValueError, KeyError, TypeError) as exc:
            verdict.add("event_edited", f"audit.jsonl line {number} is not an audit event ({exc})")
            return
        if expected is not None and event.seq > expected:
            verdict.add(
                "event_removed",
                f"audit.jsonl: event #{expected} is missing (found #{event.seq} after "
                f"#{expected - 1}): an event was removed",
            )
            return
        if expected is not None and event.seq < expected:
            verdict.add(
                "event_edited",
                f"audit.jsonl line {number}: event #{event.seq} found where #{expected} was "
                "expected: events were inserted or reordered",
            )
            return
        if prev is not None and prev.key_id and not event.key_id:
            verdict.add(
                "event_edited",
                f"audit.jsonl: event #{event.seq} is sealed with plain SHA-256 after events "
                "sealed with the audit key: it was rewritten",
            )
            return
        try:
            # A redacted event's content is not in the pack: its links are checked below.
            sealed = redacted or event_hash(event) == event.hash
        except AuditKeyUnknown as exc:
            verdict.add("key_unknown", f"audit.jsonl: event #{event.seq}: {exc.message}")
            return
        if not sealed:
            verdict.add(
                "event_edited",
                f"audit.jsonl: event #{event.seq} was edited (its hash does not match its fields)",
            )
            return
        if prev is not None and event.prev_hash != prev.hash:
            verdict.add(
                "event_edited",
                f"audit.jsonl: event #{event.seq} does not link to #{prev.seq}: "
                f"#{prev.seq} was replaced",
            )
            return
        verdict.events_checked += 1
        shown += 0 if redacted else 1
        prev, expected = event, event.seq + 1
    if redacting and shown != manifest["audit"].get("document_events"):
        verdict.add(
            "event_removed",
            f"audit.jsonl shows {shown} events in full, the manifest announces "
            f"{manifest['audit'].get('document_events')} about the pack's documents: events "
            "about them were redacted or removed",
        )
        return
    if manifest["audit"].get("first_seq") is None:
        if prev is not None:
            verdict.add("event_edited", "audit.jsonl holds events the manifest does not announce")
        return
    if prev is None or prev.seq != head["seq"]:
        last = f"#{prev.seq}" if prev is not None else "nothing"
        verdict.add(
            "event_removed",
            f"audit.jsonl ends at {last} but the chain head at export was #{head['seq']}: "
            "the newest events were removed",
        )
    elif prev.hash != head["hash"]:
        verdict.add(
            "head_mismatch",
            f"audit.jsonl: the last event #{prev.seq} does not have the head hash of the manifest",
        )


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
