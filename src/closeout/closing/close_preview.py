"""What a close would release (S8): the open lines it takes and what each releases, for one
document or, in one query per type, for many."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from closeout.closing.types import close_spec_for
from closeout.core.sql import ids_param
from closeout.documents.models import Document, Line


@dataclass(frozen=True)
class LinePreview:
    line_no: int
    planned_qty: Decimal
    fulfilled_qty: Decimal
    released_qty: Decimal
    released_value: Decimal


@dataclass(frozen=True)
class ClosePreview:
    """What a close would change: the lines that close and what they release (S8)."""

    lines: list[LinePreview]
    released_value: Decimal
    released_value_company: Decimal


def open_lines_released(document: Document, line_nos: list[int] | None) -> QuerySet[Any]:
    """The open lines a close would close, by line number, annotated with what each releases:
    `rq` (quantity) and `rv` (value, document currency)."""
    close = close_spec_for(document.doc_type)
    lines = Line.objects.filter(document_id=document.pk, close_state="open")
    if line_nos is not None:
        lines = lines.filter(line_no__in=line_nos)
    return lines.order_by("line_no").annotate(rq=close.released_qty(), rv=close.released_value())


def close_preview_for(document: Document, *, line_nos: list[int] | None = None) -> ClosePreview:
    rows = open_lines_released(document, line_nos).values_list(
        "line_no", "planned_qty", "fulfilled_qty", "rq", "rv"
    )
    return preview_of(document, rows)


def preview_of(document: Document, rows: Iterable[tuple[Any, ...]]) -> ClosePreview:
    """The preview from the open lines' (line_no, planned, fulfilled, rq, rv)."""
    previews = [
        LinePreview(no, planned, fulfilled, Decimal(rq or 0), Decimal(rv or 0))
        for no, planned, fulfilled, rq, rv in rows
    ]
    total = sum((p.released_value for p in previews), Decimal(0))
    return ClosePreview(previews, total, total * document.exchange_rate)


@dataclass(frozen=True)
class OpenLine:
    """An open line of `open_lines_of_many` with what its close releases (`rq`, `rv`)."""

    line_no: int
    item_id: int | None
    planned_qty: Decimal
    fulfilled_qty: Decimal
    rq: Any
    rv: Any

    def as_preview_row(self) -> tuple[Any, ...]:
        return (self.line_no, self.planned_qty, self.fulfilled_qty, self.rq, self.rv)


def open_lines_of_many(documents: Sequence[Document]) -> dict[int, list[OpenLine]]:
    """Per document, its open lines by line number with what each releases: what
    `open_lines_released` reads for one document, in one query per type for many."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for document in documents:
        by_type[document.doc_type].append(document.pk)
    result: dict[int, list[OpenLine]] = defaultdict(list)
    for doc_type, ids in by_type.items():
        close = close_spec_for(doc_type)
        rows = (
            Line.objects.filter(document_id__in=ids_param(ids), close_state="open")
            .order_by("document_id", "line_no")
            .annotate(rq=close.released_qty(), rv=close.released_value())
            .values_list(
                "document_id", "line_no", "item_id", "planned_qty", "fulfilled_qty", "rq", "rv"
            )
        )
        for document_id, *values in rows:
            result[document_id].append(OpenLine(*values))
    return result


def chosen(lines: list[OpenLine], line_nos: list[int] | None) -> list[OpenLine]:
    """The open lines among `line_nos` (None: all of them), as `open_lines_released` filters."""
    if line_nos is None:
        return lines
    wanted = set(line_nos)
    return [line for line in lines if line.line_no in wanted]
