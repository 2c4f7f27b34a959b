"""The KPI of approvals (definitions in kpis.py): per approval step, the decisions, the pass
rate and the latency from the step's start to its decision.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import F, Window
from django.db.models.functions import Lag
from django.utils.translation import gettext_lazy as _

from closeout.approvals.models import ApprovalDecision, Decision
from closeout.reports.kpi_base import (
    KpiFilter,
    KpiTable,
    ReportScope,
    days_between,
    document_condition,
    in_period,
    percentile,
    period_moments,
    ratio,
    rounded,
)


def approval_steps(scope: ReportScope, kpi: KpiFilter) -> KpiTable:
    """Per approval step: decisions, approvals, pass rate, median and p90 latency (hours)."""
    return KpiTable(
        key="approval_steps",
        title=_("Approval pass rate and latency by step"),
        headers=[
            _("Step"),
            _("Step name"),
            _("Decisions"),
            _("Approved"),
            _("Pass rate"),
            _("Median latency (hours)"),
            _("90th percentile latency (hours)"),
        ],
        rows=_step_rows(_decisions(scope, kpi), kpi),
    )


def _decisions(scope: ReportScope, kpi: KpiFilter) -> Any:
    """The decisions of the requests decided in the period, each with the decision before it in
    its round (the step's start), ordered by step."""
    previous = Window(
        expression=Lag("decided_at"),
        partition_by=[F("request_id"), F("round")],
        order_by=F("step_order").asc(),
    )
    # The window sees every decision of the requests decided in the period, so a step's start
    # may lie before the period; the decisions themselves are then kept to the period below.
    decided_in_period = ApprovalDecision.objects.filter(in_period("decided_at", kpi)).values(
        "request_id"
    )
    return (
        ApprovalDecision.objects.filter(document_condition(scope, kpi, "request__document__"))
        .filter(request_id__in=decided_in_period)
        .annotate(previous_at=previous)
        .values_list(
            "step_order",
            "step_name",
            "decision",
            "decided_at",
            "previous_at",
            "round",
            "request__round",
            "request__submitted_at",
        )
        .order_by("step_order", "step_name")
    )


def _step_rows(rows: Iterable[tuple[Any, ...]], kpi: KpiFilter) -> list[tuple[Any, ...]]:
    """The table's rows: the decisions in the period counted per step, their latencies from the
    step's start (the previous decision, or the submission for the current round's first step)."""
    start_at, end_at = period_moments(kpi)
    stats: dict[tuple[int, str], tuple[list[int], list[float]]] = {}
    for order, name, decision, decided, prev, rnd, current_round, submitted in rows:
        if (start_at and decided < start_at) or (end_at and decided >= end_at):
            continue
        passed, latencies = stats.setdefault((order, name), ([0, 0], []))
        passed[0] += 1
        passed[1] += decision == Decision.APPROVE
        start = prev if prev is not None else (submitted if rnd == current_round else None)
        if start is not None:
            latencies.append(days_between(start, decided) * 24)
    table: list[tuple[Any, ...]] = []
    for (order, name), ((decided_n, approved), latencies) in sorted(stats.items()):
        latencies.sort()
        table.append(
            (
                order,
                name,
                decided_n,
                approved,
                rounded(ratio(approved, decided_n), 4),
                rounded(percentile(latencies, 0.5)),
                rounded(percentile(latencies, 0.9)),
            )
        )
    return table
