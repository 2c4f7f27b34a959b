"""The close state machine (结案状态机): one table `(state, action) → new state` for documents
and one for lines. Every change of a close state is an action looked up here first; the writes
themselves live in `closing.transitions`.

Actions, not target states, are the keys: "reopen" and "release" both end in `open`, but they
start from different states and need different rights, so a held document can never be
"reopened" and a document waiting for a close approval can never be "released".
"""

from enum import StrEnum

from django.utils import translation
from django.utils.translation import gettext, pgettext_lazy

from closeout.core.errors import InvalidTransition
from closeout.documents.models import LINE_STATES_NOT_CLOSED, CloseState

S = CloseState


class Action(StrEnum):
    """What a person, the sweep or a job does to a close state."""

    CLOSE = "close"  # automatic, direct, line and batch close
    REQUEST_CLOSE = "request_close"  # also a resubmitted close request
    APPROVE_CLOSE = "approve_close"  # the last approval step executes the close
    REJECT_CLOSE = "reject_close"
    WITHDRAW_CLOSE = "withdraw_close"
    REOPEN = "reopen"  # direct reopen, by holders of reopen.approve
    REQUEST_REOPEN = "request_reopen"  # also a resubmitted reopen request
    APPROVE_REOPEN = "approve_reopen"
    REJECT_REOPEN = "reject_reopen"
    WITHDRAW_REOPEN = "withdraw_reopen"
    HOLD = "hold"
    RELEASE = "release"
    ARCHIVE = "archive"


A = Action

DOCUMENT_TRANSITIONS: dict[tuple[str, Action], str] = {
    (S.OPEN, A.CLOSE): S.CLOSED,
    (S.OPEN, A.REQUEST_CLOSE): S.CLOSE_PENDING,
    (S.CLOSE_PENDING, A.APPROVE_CLOSE): S.CLOSED,
    (S.CLOSE_PENDING, A.REJECT_CLOSE): S.OPEN,
    (S.CLOSE_PENDING, A.WITHDRAW_CLOSE): S.OPEN,
    (S.CLOSED, A.REOPEN): S.OPEN,
    (S.CLOSED, A.REQUEST_REOPEN): S.REOPEN_PENDING,
    (S.REOPEN_PENDING, A.APPROVE_REOPEN): S.OPEN,
    (S.REOPEN_PENDING, A.REJECT_REOPEN): S.CLOSED,
    (S.REOPEN_PENDING, A.WITHDRAW_REOPEN): S.CLOSED,
    (S.OPEN, A.HOLD): S.ON_HOLD,
    (S.ON_HOLD, A.RELEASE): S.OPEN,
    (S.CLOSED, A.ARCHIVE): S.ARCHIVED,
}

# Lines have no reopen request of their own (a reopen is of the document and restores the
# lines its last close closed, by the action REOPEN or APPROVE_REOPEN).
LINE_TRANSITIONS: dict[tuple[str, Action], str] = {
    (S.OPEN, A.CLOSE): S.CLOSED,
    (S.OPEN, A.REQUEST_CLOSE): S.CLOSE_PENDING,
    (S.CLOSE_PENDING, A.APPROVE_CLOSE): S.CLOSED,
    (S.CLOSE_PENDING, A.REJECT_CLOSE): S.OPEN,
    (S.CLOSE_PENDING, A.WITHDRAW_CLOSE): S.OPEN,
    (S.CLOSED, A.REOPEN): S.OPEN,
    (S.CLOSED, A.APPROVE_REOPEN): S.OPEN,
    (S.OPEN, A.HOLD): S.ON_HOLD,
    (S.ON_HOLD, A.RELEASE): S.OPEN,
    (S.CLOSED, A.ARCHIVE): S.ARCHIVED,
}

# The header/line roll-up, stated once: a header is closed (or archived) exactly when no line
# is left in one of these states; the last line to close closes the header with it.
LINE_STATES_LEFT_TO_CLOSE = LINE_STATES_NOT_CLOSED

STATE_LABELS: dict[str, object] = {
    S.OPEN: pgettext_lazy("close state", "open"),
    S.CLOSE_PENDING: pgettext_lazy("close state", "close pending approval"),
    S.CLOSED: pgettext_lazy("close state", "closed"),
    S.REOPEN_PENDING: pgettext_lazy("close state", "reopen pending approval"),
    S.ON_HOLD: pgettext_lazy("close state", "on hold"),
    S.ARCHIVED: pgettext_lazy("close state", "archived (final)"),
}

ACTION_LABELS = {
    A.CLOSE: pgettext_lazy("close action", "close"),
    A.REQUEST_CLOSE: pgettext_lazy("close action", "request a close"),
    A.APPROVE_CLOSE: pgettext_lazy("close action", "approve the close"),
    A.REJECT_CLOSE: pgettext_lazy("close action", "reject the close request"),
    A.WITHDRAW_CLOSE: pgettext_lazy("close action", "withdraw the close request"),
    A.REOPEN: pgettext_lazy("close action", "reopen"),
    A.REQUEST_REOPEN: pgettext_lazy("close action", "request a reopen"),
    A.APPROVE_REOPEN: pgettext_lazy("close action", "approve the reopen"),
    A.REJECT_REOPEN: pgettext_lazy("close action", "reject the reopen request"),
    A.WITHDRAW_REOPEN: pgettext_lazy("close action", "withdraw the reopen request"),
    A.HOLD: pgettext_lazy("close action", "hold"),
    A.RELEASE: pgettext_lazy("close action", "release"),
    A.ARCHIVE: pgettext_lazy("close action", "archive"),
}


def from_states(action: Action, *, lines: bool = False) -> tuple[str, ...]:
    """The states an action may start from."""
    table = LINE_TRANSITIONS if lines else DOCUMENT_TRANSITIONS
    return tuple(state for state, act in table if act == action)


def allowed_actions(state: str, *, lines: bool = False) -> list[Action]:
    table = LINE_TRANSITIONS if lines else DOCUMENT_TRANSITIONS
    return [act for st, act in table if st == state]


def can(state: str, action: Action, *, lines: bool = False) -> bool:
    return (state, action) in (LINE_TRANSITIONS if lines else DOCUMENT_TRANSITIONS)


def in_both_languages(msgid: str, **params: object) -> tuple[str, str]:
    """A message in English and in Chinese, from one gettext msgid; lazy params (state and
    action labels) render in each language."""
    texts = []
    for language in ("en", "zh-hans"):
        with translation.override(language):
            texts.append(gettext(msgid) % {k: str(v) for k, v in params.items()})
    return texts[0], texts[1]


def refusal(what: object, state: str, action: Action, *, lines: bool = False) -> InvalidTransition:
    """The refusal of an action the table does not allow: it names the document (or line), its
    state, the action and what is allowed from here, in English and Chinese."""
    allowed = allowed_actions(state, lines=lines)
    params: dict[str, object] = {
        "what": what,
        "state": STATE_LABELS.get(state, state),
        "action": ACTION_LABELS[action],
    }
    if allowed:
        en_list = ", ".join(_in("en", ACTION_LABELS[a]) for a in allowed)
        zh_list = "、".join(_in("zh-hans", ACTION_LABELS[a]) for a in allowed)
        en, _ = in_both_languages(
            "%(what)s is %(state)s: cannot %(action)s; allowed from here: %(allowed)s",
            **params,
            allowed=en_list,
        )
        _, zh = in_both_languages(
            "%(what)s is %(state)s: cannot %(action)s; allowed from here: %(allowed)s",
            **params,
            allowed=zh_list,
        )
    else:
        en, zh = in_both_languages(
            "%(what)s is %(state)s: cannot %(action)s; nothing is allowed from here", **params
        )
    return InvalidTransition(
        en,
        details={
            "state": state,
            "action": str(action),
            "allowed": [str(a) for a in allowed],
            "message_zh": zh,
        },
    )


def _in(language: str, text: object) -> str:
    with translation.override(language):
        return str(text)


def next_state(what: object, state: str, action: Action, *, lines: bool = False) -> str:
    """The state `action` leads to from `state`, or the refusal."""
    table = LINE_TRANSITIONS if lines else DOCUMENT_TRANSITIONS
    target = table.get((state, action))
    if target is None:
        raise refusal(what, state, action, lines=lines)
    return target


# Lines change only under an open header: a held document has no line closed, requested or
# held while it is held, and a pending or closed header has no line of its own moving. A line
# request may still be rejected or withdrawn while its document is held (its lines reopen).
HEADER_STATES_FOR_LINE_ACTIONS: dict[Action, tuple[str, ...]] = {
    A.REJECT_CLOSE: (S.OPEN, S.ON_HOLD),
    A.WITHDRAW_CLOSE: (S.OPEN, S.ON_HOLD),
}


def check_header_allows_lines(what: object, header_state: str, action: Action) -> None:
    """Refuse a line action that the document's own state does not allow."""
    if header_state not in HEADER_STATES_FOR_LINE_ACTIONS.get(action, (S.OPEN,)):
        raise refusal(what, header_state, action)
