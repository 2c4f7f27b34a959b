"""The shared parts of the risk warnings (`closeout.closing.risk`): thresholds, the warning
itself, robust statistics and the lines of the close being considered."""

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from closeout.closing.close_preview import open_lines_released
from closeout.documents.models import (
    Document,
)
from closeout.documents.types import spec_for

# --- thresholds ----------------------------------------------------------------------------
# Named here rather than in a table: they are statistical conventions, not business policy,
# and changing them needs no migration. Each says why it has its value.

# Earlier closes looked at: one year covers seasonal patterns without dragging in old habits.
HISTORY_DAYS = 365
# The newest earlier closes kept per partner and per item, so a busy partner stays cheap.
HISTORY_MAX = 500
# A median and a MAD from fewer than 8 values move too much with one close to judge by.
MIN_HISTORY = 8
# Iglewicz and Hoaglin's cut-off for the modified z-score 0.6745·(x − median)/MAD.
ROBUST_Z_LIMIT = Decimal("3.5")
# Below these excesses over the median nothing is worth a warning, however regular the history
# (a history of identical closes has no spread at all): 1,000 in company currency and 10
# percentage points of the planned quantity.
MIN_VALUE_EXCESS = Decimal(1000)
MIN_SHARE_EXCESS = Decimal("0.10")
# Business events this recent contradict a reason saying that no more will come: two weeks is
# longer than a delivery usually takes to be booked.
RECENT_EVENT_DAYS = 14
# "Completed" while more than this share of the planned quantity is still unfulfilled.
COMPLETED_MAX_SHORT_SHARE = Decimal("0.10")
# Planned quantities changed by the ERP this recently, by more than this percentage: a quantity
# lowered to what was delivered makes a short close look complete.
PLANNED_CHANGE_DAYS = 7
PLANNED_CHANGE_PCT = Decimal(20)
# A user's closes today against their active days of the last 90 days (their current habits,
# and a quarter of the rows a year would group for a heavy user): at least 8 such days, and
# today at least 3 times their median day and 5 closes more than it.
RATE_HISTORY_DAYS = 90
RATE_MIN_DAYS = 8
RATE_MULTIPLE = Decimal(3)
RATE_MIN_EXCESS = 5

# The MAD of a normal distribution is 0.6745 of its standard deviation; the mean absolute
# deviation 0.7979 of it (1/1.2533), used when more than half the values equal the median.
_MAD_FACTOR = Decimal("0.6745")
_MEAN_AD_FACTOR = Decimal("1.2533")
_Q = Decimal("0.0001")


class RiskStatus(StrEnum):
    FLAGGED = "flagged"
    NORMAL = "normal"
    THIN_HISTORY = "thin_history"


@dataclass(frozen=True)
class RiskWarning:
    """One risk check of a close: flagged, normal, or not judged for lack of history."""

    code: str
    status: RiskStatus
    measured: dict[str, Any]
    reference: dict[str, Any]
    threshold: str
    message_zh: str
    message_en: str
    action_zh: str = ""
    action_en: str = ""
    lines: list[int] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.status is RiskStatus.FLAGGED

    # `label` and `hint` as on rules, so the pages' filters show either in the page language.
    def label(self, lang: str = "zh") -> str:
        return self.message_en if lang.startswith("en") else self.message_zh

    def hint(self, lang: str = "zh") -> str:
        return self.action_en if lang.startswith("en") else self.action_zh

    def as_dict(self) -> dict[str, Any]:
        from closeout.audit.services import to_json_value

        return {
            "code": self.code,
            "status": str(self.status),
            "measured": to_json_value(self.measured),
            "reference": to_json_value(self.reference),
            "threshold": self.threshold,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "action_zh": self.action_zh,
            "action_en": self.action_en,
            "lines": self.lines,
        }


def _tidy(value: Any) -> Any:
    """Numbers as people read them: 40 rather than 40.0000 (and never 4E+1)."""
    if isinstance(value, Decimal):
        return Decimal(f"{value.normalize():f}")
    return value


@dataclass(frozen=True)
class Facts:
    """What a check measured and compared, whatever its outcome."""

    code: str
    measured: dict[str, Any]
    reference: dict[str, Any]
    threshold: str

    def warn(
        self,
        status: RiskStatus,
        message_zh: str,
        message_en: str,
        action_zh: str = "",
        action_en: str = "",
        lines: list[int] | None = None,
    ) -> RiskWarning:
        return RiskWarning(
            self.code,
            status,
            {k: _tidy(v) for k, v in self.measured.items()},
            {k: _tidy(v) for k, v in self.reference.items()},
            self.threshold,
            message_zh,
            message_en,
            action_zh,
            action_en,
            lines or [],
        )


# --- robust statistics ---------------------------------------------------------------------


def as_decimal(value: Any) -> Decimal:
    """A database number as a Decimal (SQLite computes expressions in binary floating point)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        value = str(value)
    return Decimal(value).quantize(_Q)


@dataclass(frozen=True)
class Spread:
    """Median, MAD and the scale that turns a distance from the median into a robust z."""

    size: int
    median: Decimal
    mad: Decimal
    scale: Decimal
    values: tuple[Decimal, ...]

    def z(self, x: Decimal) -> Decimal | None:
        if self.scale == 0:
            return None
        return ((x - self.median) / self.scale).quantize(Decimal("0.01"))

    def percentile(self, x: Decimal) -> Decimal:
        """The share of earlier values at or below x, in percent."""
        if not self.values:
            return Decimal(0)
        below = sum(1 for v in self.values if v <= x)
        return (Decimal(100) * below / len(self.values)).quantize(Decimal("0.1"))

    def reference(self) -> dict[str, Any]:
        return {"history": self.size, "median": self.median, "mad": self.mad}


def spread_of(values: Iterable[Decimal]) -> Spread:
    data = tuple(values)
    if not data:
        return Spread(0, Decimal(0), Decimal(0), Decimal(0), data)
    median = Decimal(statistics.median(data)).quantize(_Q)
    mad = Decimal(statistics.median(abs(v - median) for v in data)).quantize(_Q)
    if mad > 0:
        scale = mad / _MAD_FACTOR
    else:
        mean_ad = sum((abs(v - median) for v in data), Decimal(0)) / len(data)
        scale = mean_ad * _MEAN_AD_FACTOR
    return Spread(len(data), median, mad, scale, data)


def _outlier(spread: Spread, x: Decimal, min_excess: Decimal) -> tuple[bool, Decimal | None]:
    """Far above the history: enough history, a material excess, and a robust z over the
    limit (or no spread at all in the history)."""
    z = spread.z(x)
    if spread.size < MIN_HISTORY or x - spread.median < min_excess:
        return False, z
    return (z is None or z > ROBUST_Z_LIMIT), z


# --- the close being considered ------------------------------------------------------------


@dataclass(frozen=True)
class CloseLine:
    line_no: int
    item_id: int | None
    planned_qty: Decimal
    released_qty: Decimal
    released_value_company: Decimal


def close_lines(document: Document, line_nos: list[int] | None) -> list[CloseLine]:
    rows = open_lines_released(document, line_nos).values_list(
        "line_no", "item_id", "planned_qty", "rq", "rv"
    )
    return close_lines_of(document, rows)


def close_lines_of(document: Document, rows: Iterable[tuple[Any, ...]]) -> list[CloseLine]:
    """The close lines from the open lines' (line_no, item_id, planned, rq, rv)."""
    rate = document.exchange_rate
    return [
        CloseLine(
            no, item, as_decimal(planned), as_decimal(rq), (as_decimal(rv) * rate).quantize(_Q)
        )
        for no, item, planned, rq, rv in rows
    ]


def short_share(released: Decimal, planned: Decimal) -> Decimal | None:
    return (released / planned).quantize(_Q) if planned > 0 else None


def has_quantities(doc_type: str) -> bool:
    """Types whose close releases a quantity still to deliver (orders), where a short-delivery
    share means something."""
    return spec_for(doc_type).commitment is not None
