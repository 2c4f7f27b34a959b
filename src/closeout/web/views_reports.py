"""The closing reports page (结案报表, S22/S23): KPIs as server-drawn SVG charts with their tables,
filters by period, type and organisation, and downloads as .xlsx (one sheet per KPI) or CSV."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from closeout.access.permissions import Perm
from closeout.core.errors import DomainError
from closeout.core.exports import FORMATS
from closeout.core.lookup import org_unit_by_code
from closeout.core.models import ExchangeRate, OrgUnit
from closeout.documents.models import DocType
from closeout.reports.charts import bar_chart, column_chart
from closeout.reports.group import GroupReport, group_report
from closeout.reports.kpi_base import KpiFilter, KpiTable
from closeout.reports.kpi_open_value import AGE_BUCKETS
from closeout.reports.kpi_services import kpi_report_exported
from closeout.reports.kpis import kpi_report
from closeout.reports.present import displayed, kpi_tables_download
from closeout.web.forms import date_field
from closeout.web.refusals import requires
from closeout.web.views import _refused, _user, refusal_text


class ReportFilterForm(forms.Form):
    date_from = date_field(_("Date from"))
    date_to = date_field(_("Date to"))
    doc_type = forms.ChoiceField(label=_("Type"), required=False)
    org = forms.ChoiceField(label=_("Organisation"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        doc_type = self.fields["doc_type"]
        org = self.fields["org"]
        assert isinstance(doc_type, forms.ChoiceField)  # noqa: S101
        assert isinstance(org, forms.ChoiceField)  # noqa: S101
        doc_type.choices = [("", gettext("all"))] + [
            (code, str(label)) for code, label in DocType.choices
        ]
        org.choices = [("", gettext("all"))] + [
            (unit.code, f"{unit.code} {unit.name!s}") for unit in OrgUnit.objects.order_by("path")
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", gettext("The period ends before it starts."))
        return data

    def kpi_filter(self) -> KpiFilter:
        data = self.cleaned_data if self.is_bound else {}
        code = data.get("org") or ""
        return KpiFilter(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            doc_type=data.get("doc_type") or "",
            org_unit=org_unit_by_code(code, field="org") if code else None,
        )


def _percent(values: list[Any]) -> list[float | None]:
    return [None if v is None else round(float(v) * 100, 1) for v in values]


def chart_for(table: KpiTable) -> SafeString:
    """The chart that goes with a table."""
    title = str(table.title)
    labels = [str(row[0]) for row in table.rows]
    column: list[list[Any]] = [[row[i] for row in table.rows] for i in range(len(table.headers))]
    if table.key.startswith("cycle_by_"):
        series: list[tuple[str, list[Any]]] = [
            (gettext("Median"), column[2]),
            (gettext("90th percentile"), column[3]),
        ]
        return bar_chart(title=title, labels=labels, series=series)
    if table.key == "cycle_histogram":
        return column_chart(title=title, labels=labels, values=column[1])
    if table.key == "close_kind":
        labels = [f"{row[0]} {row[1]}" for row in table.rows]
        series = [(gettext("Automatic"), column[2]), (gettext("Manual"), column[3])]
        return bar_chart(title=title, labels=labels, series=series)
    if table.key.startswith("reopen_by_"):
        series = [(gettext("Reopen rate (%)"), _percent(column[3]))]
        return bar_chart(title=title, labels=labels, series=series)
    if table.key == "approval_steps":
        labels = [f"{row[0]} {row[1]}" for row in table.rows]
        series = [(gettext("Pass rate (%)"), _percent(column[4]))]
        return bar_chart(title=title, labels=labels, series=series)
    if table.key == "backlog":
        totals: dict[str, int] = {}
        for row in table.rows:
            totals[row[1]] = totals.get(row[1], 0) + row[2]
        buckets = [b for b, _low, _high in AGE_BUCKETS]
        return column_chart(title=title, labels=buckets, values=[totals.get(b, 0) for b in buckets])
    # Released value by reason or by partner.
    return bar_chart(title=title, labels=labels, series=[(str(table.headers[-1]), column[-1])])


@login_required
@require_GET
@requires(Perm.REPORT_VIEW, what=_("the reports"))
def reports(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    form = ReportFilterForm(request.GET or None)
    tables: list[KpiTable] = []
    if not form.is_bound or form.is_valid():
        try:
            kpi = form.kpi_filter()
            tables = displayed(kpi_report(user, kpi))
        except DomainError as exc:
            if not form.is_bound:
                return _refused(request, exc)
            form.add_error(None, refusal_text(exc))
        else:
            fmt = request.GET.get("export", "")
            if fmt:
                return _export(user, kpi, fmt, tables, request.GET.get("table", ""))
    params = request.GET.copy()
    params.pop("export", None)
    params.pop("table", None)
    return render(
        request,
        "web/reports.html",
        {
            "form": form,
            "sections": [(t, chart_for(t)) for t in tables],
            "params": params.urlencode(),
            "formats": FORMATS,
            "help": "reports",
        },
        # A period or filter that cannot be reported is the caller's mistake.
        status=400 if form.errors else 200,
    )


def _export(
    user: AbstractBaseUser, kpi: KpiFilter, fmt: str, tables: list[KpiTable], key: str
) -> HttpResponseBase:
    """One table as xlsx or CSV, or (xlsx without a table) the whole report, one sheet each;
    recorded in the audit log."""
    if fmt not in FORMATS:
        return _bad_request(
            gettext("Unknown download format “%(fmt)s”; use xlsx or csv") % {"fmt": fmt}
        )
    chosen = [t for t in tables if t.key == key] if key or fmt == "csv" else tables
    if not chosen:
        return _bad_request(
            gettext("Unknown report table “%(key)s”; use one of: %(known)s")
            % {"key": key, "known": ", ".join(t.key for t in tables)}
        )
    kpi_report_exported(actor=user, kpi=kpi, tables=chosen, fmt=fmt)
    return kpi_tables_download(chosen, fmt)


def _bad_request(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


class GroupForm(forms.Form):
    """The group view's choices: the group currency, the rate table and the day of the rates."""

    currency = forms.RegexField(
        label=_("Group currency"),
        regex=r"^[A-Z]{3}$",
        max_length=3,
        error_messages={"invalid": _("A 3-letter currency code such as CNY.")},
    )
    rates = forms.CharField(label=_("Rate table"), max_length=40)
    as_of = date_field(_("Rates on"))


@login_required
@require_GET
@requires(Perm.REPORT_VIEW, what=_("the group view"))
def group_view(request: HttpRequest) -> HttpResponseBase:
    """集团汇总: per company the user may see in reports, its totals in its base currency and
    in the group currency at a rate table, naming the rates used and those missing."""
    user = _user(request)
    initial = {"currency": settings.CLOSEOUT_COMPANY_CURRENCY}
    form = GroupForm(request.GET or None, initial=initial)
    report: GroupReport | None = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            report = group_report(
                actor=user, currency=data["currency"], table=data["rates"], as_of=data["as_of"]
            )
        except DomainError as exc:
            form.add_error(None, refusal_text(exc))
    return render(
        request,
        "web/group.html",
        {
            "form": form,
            "report": report,
            "tables": ExchangeRate.objects.values_list("table", flat=True)
            .distinct()
            .order_by("table"),
            "help": "reports",
        },
        status=400 if form.errors else 200,
    )
