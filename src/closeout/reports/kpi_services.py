"""Writes of the closing report: recording who downloaded which KPI tables (S13, S23)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.reports.kpi_base import KpiFilter, KpiTable


@transaction.atomic
def kpi_report_exported(
    *, actor: AbstractBaseUser, kpi: KpiFilter, tables: list[KpiTable], fmt: str
) -> None:
    """One `data_exported` audit event naming the tables, the format and the filter."""
    audit_record(
        actor=actor,
        action=AuditAction.DATA_EXPORTED,
        object_type=AuditObject.REPORT,
        object_id="kpis",
        object_repr="closing report",
        data={
            "format": fmt,
            "tables": [t.key for t in tables],
            "rows": sum(len(t.rows) for t in tables),
            "filter": {
                "date_from": kpi.date_from.isoformat() if kpi.date_from else None,
                "date_to": kpi.date_to.isoformat() if kpi.date_to else None,
                "doc_type": kpi.doc_type or None,
                "org_unit": kpi.org_unit.code if kpi.org_unit else None,
            },
        },
    )
