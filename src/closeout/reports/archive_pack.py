"""Evidence packs (证据包) of a period: what a pack holds, and writing it.

A pack holds, for a period, the documents archived or closed whose close date lies in it
(both states: a period can be exported before the archive job reached it; the close state is
a column), their lines, their business events, the audit events about them with the chain
segment that links them to the chain's head, and a manifest with each file's SHA-256 and the
head at export time. The manifest's own hash is written into the audit chain
(ARCHIVE_PACK_EXPORTED), so a pack verified against the live database is anchored in the chain.
archive_verify.py checks a pack.

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
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Min, QuerySet
from django.http import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide, require_unit_wide
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent, AuditObject
from closeout.audit.services import audit_record, canonical_payload
from closeout.core.errors import InvalidInput
from closeout.core.exports import file_download
from closeout.core.inputs import check_ascii_digits, check_date
from closeout.core.models import Company
from closeout.documents.models import BusinessEvent, CloseState, Document, Line

PACK_FORMAT = "closeout-archive-pack/1"
MANIFEST = "manifest.json"
PACK_FILES = ("documents.csv", "lines.csv", "events.csv", "audit.jsonl")
PACK_STATES = (CloseState.ARCHIVED, CloseState.CLOSED)


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
        manifest = _manifest(period, company, actor, created_at, files, audit)
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


def _manifest(
    period: Period,
    company: Company | None,
    actor: AbstractBaseUser,
    created_at: datetime,
    files: dict[str, dict[str, Any]],
    audit: dict[str, Any],
) -> dict[str, Any]:
    """The pack's manifest.json: what was selected, by whom and when, each file's SHA-256, and
    the audit chain's head at export time."""
    return {
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
