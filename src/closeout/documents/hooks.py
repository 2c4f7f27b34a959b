"""What the closing app says about a business event before it applies, registered when it
starts (closing builds on documents, so documents never imports it): whether the close
dimension the event belongs to is closed (a receipt on a line closed for receiving waits), and
what a return does to such a dimension (reopens it when the policy says so)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.contrib.auth.models import AbstractBaseUser

from closeout.documents.models import Document, Line


class DimensionQuarantine(Protocol):
    def __call__(self, doc_type: str, line: Line, kind: str) -> str: ...


class DimensionReopenForEvent(Protocol):
    def __call__(
        self,
        *,
        actor: AbstractBaseUser | None,
        document: Document,
        line: Line,
        kind: str,
        external_id: str,
    ) -> str: ...


@dataclass(frozen=True)
class EventHooks:
    # Why an event of this kind must wait on this open line ("" when it may apply).
    quarantine_reason: DimensionQuarantine
    # Before an event applies: reopen the dimension a return belongs to; the dimension or "".
    reopen_for_event: DimensionReopenForEvent
    # Of these lines, those with a dimension closed (one query for a whole bulk request).
    lines_with_closed_dimensions: Callable[[list[int]], set[int]]


def _no_quarantine(doc_type: str, line: Line, kind: str) -> str:
    return ""


def _no_reopen(
    *, actor: AbstractBaseUser | None, document: Document, line: Line, kind: str, external_id: str
) -> str:
    return ""


def _none_closed(line_ids: list[int]) -> set[int]:
    return set()


# Until closing registers its answers: no dimension is ever closed.
_hooks = EventHooks(
    quarantine_reason=_no_quarantine,
    reopen_for_event=_no_reopen,
    lines_with_closed_dimensions=_none_closed,
)


def register(hooks: EventHooks) -> None:
    global _hooks
    _hooks = hooks


def event_hooks() -> EventHooks:
    return _hooks
