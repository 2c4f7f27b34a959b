"""`closeout report kpis [--from D] [--to D] [--type T] [--org CODE] [--format table|csv|xlsx]
[--table KEY] [--out FILE] --as USERNAME`: the closing KPIs (S22) as text, CSV or one .xlsx."""

import io
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.utils import translation
from django.utils.translation import gettext_noop

from closeout.core.cli import DomainCommand, actor_for, parse_date, table
from closeout.core.errors import InvalidInput
from closeout.core.exports import write_csv, write_xlsx_sheets
from closeout.core.lookup import org_unit_by_code
from closeout.core.models import OrgUnit
from closeout.reports.kpi_base import KpiFilter, KpiTable
from closeout.reports.kpi_services import kpi_report_exported
from closeout.reports.kpis import kpi_report
from closeout.reports.present import displayed

OUTPUT_FORMATS = ("table", "csv", "xlsx")


class Command(DomainCommand):
    help = "The closing KPIs (结案指标) for the documents the user may see in reports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["kpis"], help="kpis: every closing KPI")
        parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="period start")
        parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="period end")
        parser.add_argument("--type", dest="doc_type", default="", help="document type")
        parser.add_argument("--org", default="", metavar="CODE", help="organisation unit code")
        parser.add_argument("--format", dest="fmt", default="table", help="table, csv or xlsx")
        parser.add_argument("--table", default="", metavar="KEY", help="one table, e.g. backlog")
        parser.add_argument("--out", default="", metavar="FILE", help="write to FILE")
        parser.add_argument("--lang", choices=["zh", "en"], default=None, help="language")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        fmt = options["fmt"]
        if fmt not in OUTPUT_FORMATS:
            raise InvalidInput(
                gettext_noop("--format: unknown format '%(fmt)s'; use table, csv or xlsx"),
                details={"field": "format"},
                params={"fmt": fmt},
            )
        if fmt == "xlsx" and not options["out"]:
            raise InvalidInput(
                gettext_noop("--format xlsx needs --out FILE.xlsx"),
                details={"field": "out"},
                params={},
            )
        actor = actor_for(options["as_user"])
        kpi = KpiFilter(
            date_from=parse_date(options["date_from"], "--from"),
            date_to=parse_date(options["date_to"], "--to"),
            doc_type=options["doc_type"],
            org_unit=_org(options["org"]),
        )
        lang = options["lang"] or ("en" if settings.LANGUAGE_CODE.startswith("en") else "zh")
        with translation.override("en" if lang == "en" else "zh-hans"):
            report = kpi_report(actor, kpi)
            tables = displayed(report)
            if options["table"]:
                tables = [next(t for t in tables if t.key == report.table(options["table"]).key)]
            if fmt == "csv" and len(tables) > 1:
                raise InvalidInput(
                    gettext_noop(
                        "--format csv writes one table: choose it with --table, one of: %(list)s"
                    ),
                    details={"field": "table"},
                    params={"list": ", ".join(t.key for t in tables)},
                )
            self._write(fmt, tables, options["out"])
            if fmt != "table":
                kpi_report_exported(actor=actor, kpi=kpi, tables=tables, fmt=fmt)

    def _write(self, fmt: str, tables: list[KpiTable], out: str) -> None:
        if fmt == "xlsx":
            with Path(out).open("wb") as stream:
                write_xlsx_sheets(
                    [(str(t.title), [str(h) for h in t.headers], t.rows) for t in tables], stream
                )
            self.stdout.write(f"wrote {len(tables)} tables to {out}")
            return
        text = io.StringIO()
        if fmt == "csv":
            write_csv([str(h) for h in tables[0].headers], tables[0].rows, text)
        else:
            for t in tables:
                text.write(f"{t.title} [{t.key}]\n")
                lines = table([str(h) for h in t.headers], t.rows) if t.rows else ["  —"]
                text.write("\n".join(lines) + "\n\n")
        if out:
            Path(out).write_text(text.getvalue(), encoding="utf-8")
            self.stdout.write(f"wrote {out}")
        else:
            sys.stdout.flush()
            self.stdout.write(text.getvalue(), ending="")


def _org(code: str) -> OrgUnit | None:
    if not code:
        return None
    return org_unit_by_code(code, field="org")
