"""The share of lines closed per close dimension (关闭维度), per document type: how much of the
order book is closed for receiving, invoicing, payment … (a snapshot of the lines now)."""

from typing import Any

from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from closeout.closing.dimensions import DIMENSIONS, closed_in
from closeout.documents.models import CloseState, Line
from closeout.reports.kpi_base import (
    KpiFilter,
    KpiTable,
    ReportScope,
    document_condition,
    ratio,
    rounded,
)


def dimension_share(scope: ReportScope, kpi: KpiFilter) -> KpiTable:
    """Per type and dimension: the lines, those closed in the dimension (a closed line is
    closed in every dimension) and their share."""
    rows: list[tuple[Any, ...]] = []
    for doc_type, dimensions in DIMENSIONS.items():
        if kpi.doc_type and kpi.doc_type != doc_type:
            continue
        lines = Line.objects.filter(document_condition(scope, kpi, "document__")).filter(
            document__doc_type=doc_type
        )
        whole = Q(close_state__in=(CloseState.CLOSED, CloseState.ARCHIVED))
        counts = lines.aggregate(
            total=Count("pk"),
            **{d.code: Count("pk", filter=whole | Q(closed_in(d.code))) for d in dimensions},
        )
        if not counts["total"]:
            continue
        rows.extend(
            (
                doc_type,
                str(d.label),
                counts["total"],
                counts[d.code],
                rounded(ratio(counts[d.code], counts["total"]), 4),
            )
            for d in dimensions
        )
    return KpiTable(
        key="dimension_share",
        title=_("Lines closed per close dimension"),
        headers=[_("Type"), _("Close dimension"), _("Lines"), _("Closed"), _("Closed share")],
        rows=rows,
    )
