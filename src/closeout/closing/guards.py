"""The guards of a manual close as pure predicates over facts (no query, no lock): the close
service asks them with what it read under the document's row lock, the import validation with
what it loaded set-based for thousands of rows. One definition each of: the close date (not in
the future, not before the document date, not in a closed accounting period), the lines a
close takes ("no open line"), and the way a close goes (now, or through an approval)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from django.utils.translation import gettext_noop

from closeout.closing.states import Action, can
from closeout.core.errors import InvalidInput

Company = TypeVar("Company")


def in_closed_period(
    day: date, company: Company, periods: Iterable[tuple[date, date, Company | None]]
) -> bool:
    """Whether `day` lies in one of the closed periods (start, end, company or None for every
    company) that apply to `company`."""
    return any(start <= day <= end and c in (None, company) for start, end, c in periods)


def close_date_refusals(
    day: date, *, today: date, document_date: date, period_closed: bool
) -> list[InvalidInput]:
    """What is wrong with a close date, in the order the close service checks it (it raises
    the first; the import reports each)."""
    refusals = []
    if day > today:
        refusals.append(
            InvalidInput(
                gettext_noop(
                    "close date %(date)s is in the future; choose today or an earlier day"
                ),
                params={"date": day},
                details={"field": "close_date"},
            )
        )
    if day < document_date:
        refusals.append(
            InvalidInput(
                gettext_noop("close date %(date)s is before the document date %(document_date)s"),
                params={"date": day, "document_date": document_date},
                details={"field": "close_date"},
            )
        )
    if period_closed:
        refusals.append(closed_period_refusal(day, field="close_date"))
    return refusals


def closed_period_refusal(day: date, *, field: str) -> InvalidInput:
    return InvalidInput(
        gettext_noop(
            "close date %(date)s lies in a closed accounting period; "
            "choose a date in an open period"
        ),
        params={"date": day},
        details={"field": field, "close_date": day.isoformat()},
    )


def lines_to_close(states: Mapping[int, str], action: Action = Action.CLOSE) -> list[int]:
    """The line numbers (of line number: close state) a whole-document close takes: those the
    state machine lets take `action` on their own (for a close, the open ones)."""
    return [no for no, state in states.items() if can(state, action, lines=True)]


def no_open_line(label: object) -> InvalidInput:
    """The refusal of a close that would take no line."""
    return InvalidInput(
        gettext_noop("%(document)s has no open line to close"), params={"document": label}
    )


@dataclass(frozen=True)
class ClosePath:
    """Which way a close goes: now (direct) or through a close request, and why."""

    needs_approval: bool
    by_policy: bool = False
    route: str = ""


def close_path_of(*, policy_demands_approval: bool, route: str | None) -> ClosePath:
    """The approval decision of a close: the policy can demand approval for every close of a
    type; otherwise a close needs approval when an approval route applies (S9)."""
    if policy_demands_approval:
        return ClosePath(needs_approval=True, by_policy=True, route=route or "")
    if route is not None:
        return ClosePath(needs_approval=True, route=route)
    return ClosePath(needs_approval=False)
