"""Pages of the import of close instructions (导入结案指令): upload, the report, the
template, execution as a batch job. Thin: they call the import services and render."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.batches.import_template import import_template
from closeout.batches.imports import (
    COLUMNS,
    import_execute,
    import_get,
    import_list_for,
    import_validate,
    report_rows,
    report_table,
)
from closeout.core.errors import DomainError
from closeout.core.exports import XLSX_CONTENT_TYPE, export_response
from closeout.core.inputs import is_digits
from closeout.web.views import _user, refusal_text

REPORT_PAGE = 200


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File (.xlsx or .csv)"),
        help_text=_("At most 50,000 rows; UTF-8 or GBK for CSV."),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )


@login_required
@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    """Upload a file (validated at once, nothing changes) and see my recent imports."""
    user = _user(request)
    posted = request.method == "POST"
    form = ImportUploadForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            imported = import_validate(actor=user, upload=upload.file, file_name=upload.name)
            return redirect("web:import", pk=imported.pk)
        except DomainError as exc:
            form.add_error("file", refusal_text(exc))
    return render(
        request,
        "web/imports.html",
        {
            "form": form,
            "recent": import_list_for(user),
            "may_import": user_has_perm(user, Perm.IMPORT_RUN),
            "columns": COLUMNS,
            "help": "imports",
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_GET
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The report: counts, each row's result, the download and the button to execute."""
    imported = import_get(actor=_user(request), import_id=pk)
    show = "errors" if request.GET.get("show") == "errors" else "all"
    text = request.GET.get("page", "1")
    page = max(1, int(text)) if is_digits(text) and len(text) <= 9 else 1
    rows = list(report_rows(imported, errors_only=show == "errors", language=request.LANGUAGE_CODE))
    start = (page - 1) * REPORT_PAGE
    shown = rows[start : start + REPORT_PAGE]
    return render(
        request,
        "web/import.html",
        {
            "imported": imported,
            "rows": shown,
            "show": show,
            "page": page,
            "pages": max(1, (len(rows) + REPORT_PAGE - 1) // REPORT_PAGE),
            "has_next": start + REPORT_PAGE < len(rows),
            "headers": imported.report.get("headers", []),
            "help": "imports",
        },
    )


@login_required
@require_POST
def import_execute_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Create the batch job of the valid rows, start it, and show its progress."""
    user = _user(request)
    imported = import_get(actor=user, import_id=pk)
    if imported.job_id is not None:
        return redirect("web:batch", pk=imported.job_id)
    job = import_execute(actor=user, import_file=imported, workers=1)
    return redirect("web:batch", pk=job.pk)


@login_required
@require_GET
def import_report(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The report as .xlsx: the uploaded columns plus row, result, column and message, in the
    page's language."""
    imported = import_get(actor=_user(request), import_id=pk)
    headers, rows = report_table(imported, language=request.LANGUAGE_CODE)
    return export_response(
        "xlsx",
        filename=f"import-{imported.pk}-report",
        headers=headers,
        rows=rows,
        sheet_title=pgettext("import report sheet", "report"),
    )


@login_required
@require_GET
def import_template_view(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in ("xlsx", "csv"):
        raise Http404(gettext("The template is available as .xlsx or .csv."))
    content = import_template(fmt)
    response = HttpResponse(
        content, content_type=XLSX_CONTENT_TYPE if fmt == "xlsx" else "text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="closeout-import-template.{fmt}"'
    return response
