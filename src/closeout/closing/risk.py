"""Risk warnings before a manual close (风险预警, S24): unusual cases read from the data.

Each warning carries the numbers behind it (the measured value, the reference it is compared
with and the threshold), a message in Chinese and English and what to do next. Warnings are
advisory: they never change a rule's verdict, never block a close, and the automatic sweep
does not compute them.

Four families, each computed with a few bounded, indexed queries:
- the released open value and the short-delivery share of this close against the partner's and
  the items' earlier manual closes (robust z-score from the median and the MAD);
- a close reason that the data contradicts (the table `REASON_CONTRADICTIONS`);
- a close right after a large change of planned quantities by the ERP upsert (audit events);
- a user closing far more today than on their usual days (audit events).
The checks live in `risk_base`, `risk_history`, `risk_reasons` and `risk_activity`; this
module runs them all and names what callers use.
"""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from closeout.closing.risk_activity import (
    change_risks,
    rate_risk,
)
from closeout.closing.risk_base import (
    MIN_HISTORY,
    MIN_VALUE_EXCESS,
    RiskStatus,
    RiskWarning,
    Spread,
    _outlier,
    close_lines,
    spread_of,
)
from closeout.closing.risk_history import (
    history_risks,
)
from closeout.closing.risk_reasons import (
    REASON_CONTRADICTIONS,
    Contradiction,
    reason_risks,
)
from closeout.documents.models import (
    CloseState,
    Document,
)

# --- the selector --------------------------------------------------------------------------


def close_risks_for(
    document: Document,
    *,
    actor: AbstractBaseUser | None,
    reason_code: str = "",
    line_nos: list[int] | None = None,
    now: datetime | None = None,
) -> list[RiskWarning]:
    """Every risk check of a manual close of `document` (or of its lines `line_nos`) by
    `actor` with `reason_code` (when known), flagged ones first."""
    if document.close_state != CloseState.OPEN:
        return []
    moment = now or timezone.now()
    lines = close_lines(document, line_nos)
    if not lines:
        return []
    risks = history_risks(document, lines, moment)
    if reason_code:
        risks += reason_risks(document, reason_code, lines, line_nos, moment)
    risks += change_risks(document, lines, moment)
    if actor is not None and actor.pk is not None:
        risks.append(rate_risk(actor, moment))
    return flagged_first(risks)


def flagged_first(risks: list[RiskWarning]) -> list[RiskWarning]:
    """The warnings in the order people read them: flagged, not judged, normal."""
    order = {RiskStatus.FLAGGED: 0, RiskStatus.THIN_HISTORY: 1, RiskStatus.NORMAL: 2}
    return sorted(risks, key=lambda r: order[r.status])


__all__ = [
    "MIN_HISTORY",
    "MIN_VALUE_EXCESS",
    "REASON_CONTRADICTIONS",
    "Contradiction",
    "RiskStatus",
    "RiskWarning",
    "Spread",
    "_outlier",
    "close_risks_for",
    "spread_of",
]
