"""The closing report (结案报表): the KPI tables as JSON, or one table (or all, .xlsx) as a
download, for the documents the caller may see in reports."""

from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext_noop
from ninja import Query, Router, Schema

from closeout.api import present
from closeout.api.routers._common import CSV, ERRORS, XLSX, caller, download
from closeout.api.schemas import Day, GroupCompanyOut, GroupReportOut, KpiReportOut, dec
from closeout.core.errors import InvalidInput
from closeout.core.lookup import org_unit_by_code
from closeout.core.models import OrgUnit
from closeout.reports.group import group_report
from closeout.reports.kpi_base import KpiFilter
from closeout.reports.kpi_services import kpi_report_exported
from closeout.reports.kpis import kpi_report
from closeout.reports.present import displayed, kpi_tables_download

router = Router(tags=["reports"])


class KpiParams(Schema):
    date_from: Day | None = None
    date_to: Day | None = None
    doc_type: str = ""
    org_unit: str = ""
    format: Literal["xlsx", "csv"] | None = None
    table: str = ""


def _org_unit(code: str) -> OrgUnit | None:
    if not code:
        return None
    return org_unit_by_code(code)


@router.get(
    "/kpis",
    response={200: KpiReportOut, **ERRORS},
    summary="Closing KPIs as tables; with `format`, a download (.xlsx or CSV)",
    openapi_extra=download(XLSX, CSV, also_json=True),
)
def kpis(request: HttpRequest, params: Query[KpiParams]) -> Any:
    """Limited to the organisation units (and types) where the caller holds `report.view`.
    `format=csv` needs `table`; `format=xlsx` without `table` is the whole report, one sheet
    per table. Downloads are recorded in the audit log."""
    actor = caller(request)
    kpi = KpiFilter(
        date_from=params.date_from,
        date_to=params.date_to,
        doc_type=params.doc_type,
        org_unit=_org_unit(params.org_unit),
    )
    report = kpi_report(actor, kpi)
    tables = displayed(report)
    if params.format is None:
        return KpiReportOut(
            date_from=kpi.date_from,
            date_to=kpi.date_to,
            doc_type=kpi.doc_type,
            org_unit=params.org_unit,
            tables=[present.kpi_table_out(t) for t in tables],
        )
    if params.format == "csv" and not params.table:
        raise InvalidInput(
            gettext_noop("a CSV download holds one table: name it with 'table' (one of: %(list)s)"),
            details={"field": "table"},
            params={"list": ", ".join(t.key for t in tables)},
        )
    chosen = (
        [t for t in tables if t.key == report.table(params.table).key] if params.table else tables
    )
    kpi_report_exported(actor=actor, kpi=kpi, tables=chosen, fmt=params.format)
    return kpi_tables_download(chosen, params.format)


class GroupParams(Schema):
    currency: str
    rates: str
    as_of: Day | None = None


@router.get(
    "/group",
    response={200: GroupReportOut, **ERRORS},
    summary="Group view (集团汇总): per-company totals converted at a rate table",
)
def group(request: HttpRequest, params: Query[GroupParams]) -> Any:
    """Only the companies (and their documents) where the caller holds `report.view`; each
    company's totals in its base currency and in `currency` at rate table `rates` on `as_of`
    (default today), naming the rates used and the pairs the table lacks."""
    report = group_report(
        actor=caller(request), currency=params.currency, table=params.rates, as_of=params.as_of
    )
    return GroupReportOut(
        currency=report.currency,
        rates=report.table,
        as_of=report.as_of,
        companies=[
            GroupCompanyOut(
                code=c.code,
                name=c.name,
                base_currency=c.base_currency,
                documents=c.documents,
                open_documents=c.open_documents,
                total=present.s(c.total),
                released=present.s(c.released),
                rate=dec(c.rate),
                group_total=dec(c.group_total),
                group_released=dec(c.group_released),
            )
            for c in report.companies
        ],
        total=present.s(report.total),
        released=present.s(report.released),
        rates_used=report.rates_used,
        rates_missing=report.rates_missing,
    )
