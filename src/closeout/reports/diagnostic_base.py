"""What every consistency check (数据校验) is made of: the options a run passes (the time, the
reopen age limit), a check's columns, and the building blocks the checks share: conditions per
close policy, the first problem a row meets, and the drill-down rows of lines and documents.

The checks themselves are grouped by family (diagnostic_quantities, diagnostic_amounts,
diagnostic_states); diagnostics.py holds their list, the reads and the run.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_partitions
from closeout.closing.rules import dec
from closeout.core.errors import InvalidInput
from closeout.core.inputs import MAX_DAYS
from closeout.documents.models import CloseState, Document, Line

DEFAULT_REOPEN_STALE_DAYS = 30
CLOSED_STATES = (CloseState.CLOSED, CloseState.ARCHIVED)
NOT_CLOSED_STATES = (CloseState.OPEN, CloseState.ON_HOLD, CloseState.CLOSE_PENDING)


def reopen_stale_days() -> int:
    return int(getattr(settings, "CLOSEOUT_REOPEN_STALE_DAYS", DEFAULT_REOPEN_STALE_DAYS))


@dataclass(frozen=True)
class Options:
    """What a check may depend on besides the data: the time and the reopen age limit."""

    now: datetime
    stale_days: int

    @classmethod
    def default(cls, stale_days: int | None = None) -> "Options":
        days = reopen_stale_days() if stale_days is None else stale_days
        if not 0 <= days <= MAX_DAYS:
            raise InvalidInput(
                gettext_noop(
                    "reopen age limit must be 0 or more days (at most %(max)s), not %(days)s"
                ),
                params={"max": MAX_DAYS, "days": days},
                details={"field": "stale_days"},
            )
        return cls(timezone.now(), days)


@dataclass(frozen=True)
class Column:
    key: str
    label: str | Promise


@dataclass(frozen=True)
class Check:
    code: str
    label: str | Promise
    what_next: str | Promise
    # "line" or "document": what one drill-down row is.
    level: str
    measures: tuple[Column, ...]
    query: Callable[[Options], QuerySet[Any]]

    @property
    def columns(self) -> tuple[Column, ...]:
        base = [
            Column("doc_type_code", _("Type")),
            Column("doc_number", _("Number")),
            Column("org", _("Organisation unit")),
            Column("partner_name", _("Partner")),
        ]
        if self.level == "line":
            base += [Column("line", _("Line")), Column("item_code", _("Item"))]
        base.append(Column("state", _("Close state")))
        return (*base, *self.measures, Column("problem", _("Problem")))


# --- building blocks -------------------------------------------------------------------------


def prefixed(q: Q, prefix: str) -> Q:
    """A Document condition as a condition on a related model (Line: prefix "document__")."""
    clone = Q()
    clone.connector, clone.negated = q.connector, q.negated
    children: list[Any] = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(prefixed(child, prefix))
        elif isinstance(child, tuple):
            children.append((prefix + child[0], child[1]))
        else:
            raise TypeError(f"cannot move the condition {child!r} onto {prefix}")
    clone.children = children
    return clone


def by_policy(
    doc_type: str, build: Callable[[ClosePolicy], Q], *, on_lines: bool
) -> list[tuple[Q, Q]]:
    """(documents a policy governs, the condition under that policy) for each policy of a type."""
    result = []
    for policy, scope in policy_partitions(doc_type):
        where = Q(document__doc_type=doc_type) if on_lines else Q(doc_type=doc_type)
        where &= prefixed(scope, "document__") if on_lines else scope
        result.append((where, build(policy)))
    return result


def labelled(qs: QuerySet[Any], problems: list[tuple[str, list[tuple[Q, Q]]]]) -> QuerySet[Any]:
    """Rows meeting any problem condition, with the first problem they meet named."""
    condition = Q(pk__in=[])
    whens = []
    for code, parts in problems:
        for where, failing in parts:
            condition |= where & failing
            whens.append(When(where & failing, then=Value(code)))
    labelled_rows: QuerySet[Any] = qs.filter(condition).annotate(
        problem=Case(*whens, default=Value(""), output_field=CharField())
    )
    return labelled_rows


def line_rows(qs: QuerySet[Line], **measures: Any) -> QuerySet[Any]:
    return qs.order_by("document_id", "line_no").values(
        doc_id=F("document_id"),
        doc_type_code=F("document__doc_type"),
        doc_number=F("document__number"),
        org=F("document__org_unit__code"),
        partner_name=F("document__partner__name"),
        line=F("line_no"),
        item_code=F("item__code"),
        state=F("close_state"),
        problem=F("problem"),
        **measures,
    )


def document_rows(qs: QuerySet[Document], **measures: Any) -> QuerySet[Any]:
    return qs.order_by("pk").values(
        doc_id=F("pk"),
        doc_type_code=F("doc_type"),
        doc_number=F("number"),
        org=F("org_unit__code"),
        partner_name=F("partner__name"),
        state=F("close_state"),
        problem=F("problem"),
        **measures,
    )


def lines_total(field: str) -> Coalesce:
    """Sum of a line field over all the document's lines (closed ones included)."""
    lines = (
        Line.objects.filter(document_id=OuterRef("pk"))
        .values("document_id")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Coalesce(Subquery(lines), dec(0))
