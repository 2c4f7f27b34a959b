"""Answers the close services need from the approvals app, registered when it starts.

Closing sits below approvals (which keeps the accounting periods and the approval routes and
calls closing), so closing never imports it: `ApprovalsConfig.ready()` calls `register` once.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured

from closeout.closing.selectors import Checklist
from closeout.documents.models import Document


class Route(Protocol):
    name: str


class RouteForClose(Protocol):
    def __call__(
        self, document: Document, *, checklist: Checklist, line_nos: list[int] | None
    ) -> Route | None: ...


@dataclass(frozen=True)
class ApprovalAnswers:
    # Does `day` lie in a closed accounting period (已关账) of the company (`company_id`)?
    period_is_closed: Callable[[date | None, int | None], bool]
    # The approval route a close of these lines must take, if any.
    route_for_close: RouteForClose


_answers: ApprovalAnswers | None = None


def register(answers: ApprovalAnswers) -> None:
    global _answers
    _answers = answers


def approval_answers() -> ApprovalAnswers:
    if _answers is None:
        raise ImproperlyConfigured("closeout.approvals is not installed: no approval answers")
    return _answers
