"""What every KPI table of the closing report shares: the manager's filter (KpiFilter), a
table (KpiTable), the viewer's scope (ReportScope: the documents they may see in reports), the
period as conditions, and the small arithmetic (percentiles the way PostgreSQL computes them,
ratios, money to the cent). The tables are computed in kpi_closes, kpi_approvals and
kpi_open_value; kpis.py defines them and assembles the report.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import grants_of
from closeout.audit.services import SYSTEM_ACTOR
from closeout.core.doctypes import doc_type_codes
from closeout.core.errors import InvalidInput
from closeout.core.inputs import check_date
from closeout.core.models import OrgUnit
from closeout.documents.models import CloseState

# Documents whose current close stands (a reopen pending approval is still closed).
CLOSED_STATES = (CloseState.CLOSED, CloseState.REOPEN_PENDING, CloseState.ARCHIVED)
SYSTEM_USER = SYSTEM_ACTOR  # how the audit log names closes without a user (the sweep)


@dataclass(frozen=True)
class KpiFilter:
    """What the manager asked for; every part optional."""

    date_from: date | None = None
    date_to: date | None = None
    doc_type: str = ""
    org_unit: OrgUnit | None = None

    def __post_init__(self) -> None:
        if self.doc_type and self.doc_type not in doc_type_codes():
            raise InvalidInput(
                gettext_noop("unknown document type '%(doc_type)s'; use one of: %(allowed)s"),
                params={"doc_type": self.doc_type, "allowed": ", ".join(doc_type_codes())},
                details={"field": "type"},
            )
        check_date(self.date_from, field="date_from")
        check_date(self.date_to, field="date_to")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput(
                gettext_noop("the period starts (%(start)s) after it ends (%(end)s)"),
                params={"start": self.date_from, "end": self.date_to},
                details={"field": "date_from"},
            )


@dataclass(frozen=True)
class KpiTable:
    """One KPI as a table: the dashboard, the CLI and the exports all show these."""

    key: str
    title: str | Promise
    headers: Sequence[str | Promise]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


# --- scope ---------------------------------------------------------------------------------


def _q(prefix: str, **lookups: Any) -> Q:
    return Q(**{f"{prefix}{name}": value for name, value in lookups.items()})


@dataclass(frozen=True)
class ReportScope:
    """What one viewer may see in reports: (organisation path, document types or empty for
    all) per grant whose role includes `report.view`. Read once per report."""

    grants: tuple[tuple[str, tuple[str, ...]], ...]

    def condition(self, prefix: str = "") -> Q:
        """A condition on Document (or, with a prefix such as "document__", on a model that
        points at one)."""
        condition = _q(prefix, pk__in=[])
        for path, doc_types in self.grants:
            scope = _q(prefix, org_unit__path__startswith=path)
            if doc_types:
                scope &= _q(prefix, doc_type__in=list(doc_types))
            condition |= scope
        return condition


def report_scope(viewer: AbstractBaseUser) -> ReportScope:
    return ReportScope(
        tuple(
            (grant.org_unit.path, tuple(grant.doc_types or ()))
            for grant in grants_of(viewer)
            if Perm.REPORT_VIEW in grant.role.all_permissions()
        )
    )


def document_condition(scope: ReportScope, kpi: KpiFilter, prefix: str = "") -> Q:
    """The viewer's scope narrowed by the filter's type and organisation (with descendants)."""
    condition = scope.condition(prefix)
    if kpi.doc_type:
        condition &= _q(prefix, doc_type=kpi.doc_type)
    if kpi.org_unit is not None:
        condition &= _q(prefix, org_unit__path__startswith=kpi.org_unit.path)
    return condition


def period_moments(kpi: KpiFilter) -> tuple[datetime | None, datetime | None]:
    """The period as [start, end) instants: local midnights of `date_from` and `date_to` + 1."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(kpi.date_from, time.min, tz) if kpi.date_from else None
    end = datetime.combine(kpi.date_to + timedelta(days=1), time.min, tz) if kpi.date_to else None
    return start, end


def in_period(name: str, kpi: KpiFilter) -> Q:
    start, end = period_moments(kpi)
    condition = Q()
    if start is not None:
        condition &= Q(**{f"{name}__gte": start})
    if end is not None:
        condition &= Q(**{f"{name}__lt": end})
    return condition


def dates_in_period(name: str, kpi: KpiFilter) -> Q:
    condition = Q()
    if kpi.date_from:
        condition &= Q(**{f"{name}__gte": kpi.date_from})
    if kpi.date_to:
        condition &= Q(**{f"{name}__lte": kpi.date_to})
    return condition


# --- small arithmetic ----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the nearest ranks."""
    if not sorted_values:
        return None
    rank = fraction * (len(sorted_values) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def money(value: Decimal | None) -> Decimal:
    """A sum in company currency to the cent (SQLite's sums carry float noise)."""
    return Decimal(value or 0).quantize(Decimal("0.01"))


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
