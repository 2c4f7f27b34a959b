"""Metrics computed when Prometheus scrapes: the closing queue's depth and the age of the
last audit checkpoint."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from closeout.core.doctypes import doc_type_codes
from closeout.documents.models import CloseState, Document

# The last line of the checkpoint file is found in its tail; a line is far shorter.
_TAIL_BYTES = 64 * 1024


def open_documents_by_type() -> dict[str, int]:
    """One count per type through document_queue_idx (doc_type, id); the state is tested on
    the rows, since no index holds it (documents migration 0011: closes stay heap-only)."""
    return {
        code: Document.objects.filter(doc_type=code, close_state=CloseState.OPEN).count()
        for code in doc_type_codes()
    }


def last_checkpoint_time(path: Path) -> datetime | None:
    """The "at" time of the last JSON line of the checkpoint file; None when there is no file,
    no line, or the last line has no readable time."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        at = datetime.fromisoformat(str(json.loads(lines[-1])["at"]))
    except (ValueError, KeyError, TypeError):
        return None
    return at if timezone.is_aware(at) else at.replace(tzinfo=UTC)


def checkpoint_age_seconds(path: Path) -> float:
    """Seconds since the last audit checkpoint, or -1 when there is none."""
    at = last_checkpoint_time(path)
    return -1.0 if at is None else max(0.0, (timezone.now() - at).total_seconds())


class ScrapeCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "closeout_open_documents",
            "Documents waiting to be closed (close state open), by document type.",
            labels=["doc_type"],
        )
        for doc_type, n in open_documents_by_type().items():
            depth.add_metric([doc_type], n)
        yield depth
        yield GaugeMetricFamily(
            "closeout_audit_checkpoint_age_seconds",
            "Seconds since the last audit checkpoint was written (-1: none yet).",
            value=checkpoint_age_seconds(Path(settings.CLOSEOUT_AUDIT_CHECKPOINTS)),
        )


scrape_registry = CollectorRegistry(auto_describe=False)
scrape_registry.register(ScrapeCollector())
