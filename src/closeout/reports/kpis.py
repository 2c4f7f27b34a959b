"""Closing KPIs (S22) and the managers' closing report (S23): read-only selectors over documents,
lines, business events, approval decisions and the audit log. No table of their own. This
module defines them and assembles the report; kpi_base holds the filter, the scope and the table,
kpi_closes, kpi_approvals, kpi_open_value and dimension_kpi compute the tables.

Definitions (also in the help panel and README):

- *Fulfilment complete* is the business time (`occurred_at`) of the last business event applied
  to the document at or before its close. A document without event rows (its measures synced or
  generated in bulk) uses its last activity time instead, the clock the grace-days rule uses.
  Documents with neither before the close (nothing ever happened) have no cycle time.
- *Close cycle time* is `closed_at` − fulfilment complete, in days, over the documents that are
  closed now (closed, reopen pending or archived) with a close date in the period. A close that
  was reopened no longer counts: its document is open again.
- Medians and 90th percentiles are computed the way PostgreSQL's `percentile_cont` does (linear
  interpolation between the two nearest ranks), in Python over the durations fetched in one
  query ordered by group and duration. SQLite has no percentile function and the result must
  be the same on both databases, so one code path serves both; the query returns one narrow
  row per closed document, which stays small for the periods a manager looks at.
- *Close actions* (for the reopen rate) come from the audit log, since a reopen erases the close
  fields of the document: every `document_closed` event in the period is a close; every
  `document_reopened` event in the period is a reopen, charged to the user (and close reason)
  of the close it reverted, i.e. the latest `document_closed` event of that document before it.
- *Approval latency* of a step is the time from the step's start to its decision: the start is
  the previous step's decision in the same round, or the submission for the first step of the
  request's current round. The first step of an earlier round (before a resubmission) has no
  recorded start and counts in the pass rate only.
- *Backlog* is the documents open today (open, pending close approval or on hold), aged from
  their document date (always present; the expected date is optional) to today. The period
  filters the document date.
- *Released value* is the open value manual closes released, in company currency, summed over
  the lines closed by hand (line close fields), with the line's close time in the period.

Every selector is limited to the documents the viewer may see in reports: the organisation
subtrees (and document types) of their grants whose role includes `report.view`.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.core.errors import InvalidInput
from closeout.reports.dimension_kpi import dimension_share
from closeout.reports.kpi_approvals import approval_steps
from closeout.reports.kpi_base import KpiFilter, KpiTable, report_scope
from closeout.reports.kpi_closes import (
    close_cycle_histogram,
    close_cycle_time,
    close_kind_share,
    cycle_durations,
    reopen_rate,
)
from closeout.reports.kpi_open_value import backlog_by_age, released_by_partner, released_by_reason


@dataclass(frozen=True)
class KpiReport:
    kpi: KpiFilter
    tables: list[KpiTable]

    def table(self, key: str) -> KpiTable:
        for table in self.tables:
            if table.key == key:
                return table
        raise InvalidInput(
            gettext_noop("unknown report table '%(key)s'; use one of: %(allowed)s"),
            params={"key": key, "allowed": ", ".join(t.key for t in self.tables)},
            details={"field": "table"},
        )


def kpi_report(viewer: AbstractBaseUser, kpi: KpiFilter) -> KpiReport:
    """Every KPI for the viewer and filter; refused without `report.view`."""
    require(viewer, Perm.REPORT_VIEW, what=str(_("the reports")))
    scope = report_scope(viewer)
    durations = cycle_durations(scope, kpi)
    return KpiReport(
        kpi=kpi,
        tables=[
            *(
                close_cycle_time(scope, kpi, by=by, durations=durations)
                for by in ("doc_type", "org_unit", "closed_by")
            ),
            close_cycle_histogram(scope, kpi, durations=durations),
            close_kind_share(scope, kpi),
            reopen_rate(scope, kpi, by="closed_by"),
            reopen_rate(scope, kpi, by="reason"),
            approval_steps(scope, kpi),
            backlog_by_age(scope, kpi),
            released_by_reason(scope, kpi),
            released_by_partner(scope, kpi),
            dimension_share(scope, kpi),
        ],
    )
