"""The KPI tables as people read them: document types, reason codes and the system user by
name in the active language. Shared by the reports page, its downloads and `closeout report`."""

from collections.abc import Callable
from typing import Any

from django.db.models import F
from django.http import HttpResponseBase
from django.utils.translation import get_language, gettext

from closeout.closing.models import ReasonCode
from closeout.core.exports import export_response, export_workbook_response
from closeout.documents.models import DocType
from closeout.reports.kpi_base import SYSTEM_USER, KpiTable
from closeout.reports.kpis import KpiReport

# Which column of a table holds a document type, a reason code or a user.
DOC_TYPE_COLUMNS = {"cycle_by_doc_type": 0, "close_kind": 0, "backlog": 0, "dimension_share": 0}
REASON_COLUMNS = {"reopen_by_reason": 0, "released_by_reason": 0}
USER_COLUMNS = {"cycle_by_closed_by": 0, "reopen_by_closed_by": 0}


def _cell_labeller() -> Callable[[str, int, Any], Any]:
    reasons = {
        r.code: r.label_en if _english() else r.label_zh
        # The group's name wins over a company's own (the last one in this order).
        for r in ReasonCode.objects.only("code", "label_zh", "label_en").order_by(
            F("company_id").desc(nulls_last=True)
        )
    }
    types = {code: str(label) for code, label in DocType.choices}
    system = gettext("system (automatic close)")

    def label(key: str, column: int, value: Any) -> Any:
        if DOC_TYPE_COLUMNS.get(key) == column:
            return types.get(value, value)
        if REASON_COLUMNS.get(key) == column:
            return reasons.get(value, value)
        if USER_COLUMNS.get(key) == column and value == SYSTEM_USER:
            return system
        return value

    return label


def _english() -> bool:
    return (get_language() or "").startswith("en")


def displayed(report: KpiReport) -> list[KpiTable]:
    """The report's tables with types, reasons and the system user by name."""
    label = _cell_labeller()
    return [
        KpiTable(
            key=t.key,
            title=t.title,
            headers=t.headers,
            rows=[tuple(label(t.key, i, v) for i, v in enumerate(row)) for row in t.rows],
        )
        for t in report.tables
    ]


def kpi_tables_download(tables: list[KpiTable], fmt: str) -> HttpResponseBase:
    """Several tables as one .xlsx workbook (a sheet each), or one table as .xlsx or CSV."""

    def headers(table: KpiTable) -> list[str]:
        return [str(h) for h in table.headers]

    if len(tables) > 1:
        return export_workbook_response(
            filename="closing-report",
            sheets=[(str(t.title), headers(t), t.rows) for t in tables],
        )
    return export_response(
        fmt,
        filename=f"closing-report-{tables[0].key}",
        headers=headers(tables[0]),
        rows=tables[0].rows,
        sheet_title=str(tables[0].title),
    )
