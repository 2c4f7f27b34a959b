"""The one transition table of close states (结案状态). Only closing services change states,
and each change is checked here first."""

from closeout.core.errors import InvalidTransition
from closeout.documents.models import CloseState

S = CloseState

TRANSITIONS: dict[str, frozenset[str]] = {
    S.OPEN: frozenset({S.CLOSED, S.CLOSE_PENDING, S.ON_HOLD}),
    S.CLOSE_PENDING: frozenset({S.CLOSED, S.OPEN}),
    S.CLOSED: frozenset({S.OPEN, S.REOPEN_PENDING, S.ARCHIVED}),
    S.REOPEN_PENDING: frozenset({S.OPEN, S.CLOSED}),
    S.ON_HOLD: frozenset({S.OPEN}),
    S.ARCHIVED: frozenset(),
}

_WHY: dict[tuple[str, str], str] = {
    (S.ARCHIVED, S.OPEN): "an archived (final) close can never be reopened",
    (S.ARCHIVED, S.REOPEN_PENDING): "an archived (final) close can never be reopened",
    (S.ARCHIVED, S.ON_HOLD): "it is archived (final): it can never be held or changed",
    (S.ARCHIVED, S.CLOSED): "it is archived (final): it stays archived for ever",
    (S.ARCHIVED, S.CLOSE_PENDING): "it is archived (final): it stays archived for ever",
    (S.ARCHIVED, S.ARCHIVED): "it is already archived (final)",
    (S.OPEN, S.ARCHIVED): "only a closed document can be archived",
    (S.ON_HOLD, S.ARCHIVED): "only a closed document can be archived",
    (S.CLOSE_PENDING, S.ARCHIVED): "only a closed document can be archived",
    (S.REOPEN_PENDING, S.ARCHIVED): "a reopen request is waiting: only a closed document can "
    "be archived",
    (S.ON_HOLD, S.CLOSED): "it is on hold (冻结): release it first",
    (S.OPEN, S.OPEN): "it is already open",
    (S.CLOSED, S.CLOSED): "it is already closed",
    (S.CLOSE_PENDING, S.CLOSE_PENDING): "a close request is already waiting for approval",
    (S.OPEN, S.REOPEN_PENDING): "it is not closed",
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def check_transition(what: str, current: str, target: str) -> None:
    if can_transition(current, target):
        return
    why = _WHY.get((current, target)) or (
        "allowed from here: " + (", ".join(sorted(TRANSITIONS[current])) or "nothing")
    )
    raise InvalidTransition(
        f"{what} is {current} and cannot become {target}: {why}",
        details={"from": current, "to": target},
    )
