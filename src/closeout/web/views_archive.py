"""The archive page (归档, S15): retention per policy, archive runs, the evidence pack of a
period for download, and the verification of an uploaded pack."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.core.companies import companies, company_get
from closeout.core.errors import DomainError, InvalidInput, PermissionDenied
from closeout.reports.archive import (
    archive_packs_exported,
    archive_retention_overview,
    archive_runs_recent,
)
from closeout.reports.archive_pack import Period, archive_pack_download, period_parse
from closeout.reports.archive_verify import PackVerdict, archive_pack_verify
from closeout.web.views import _user, refusal_text

# An uploaded pack larger than this is refused before it is read.
MAX_PACK_UPLOAD = 200 * 1024 * 1024


class PackExportForm(forms.Form):
    period = forms.CharField(
        label=_("Period"),
        max_length=30,
        help_text=_("A month such as 2026-03, or a range 2026-03-01..2026-03-15"),
        widget=forms.TextInput(attrs={"placeholder": "2026-03"}),
    )
    company = forms.ChoiceField(label=_("Company"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        company = self.fields["company"]
        assert isinstance(company, forms.ChoiceField)  # noqa: S101
        company.choices = [("", gettext("every company"))] + [
            (c.code, f"{c.code} {c.name}") for c in companies()
        ]

    def clean_period(self) -> Period:
        text = self.cleaned_data["period"]
        try:
            return period_parse(text)
        except InvalidInput as exc:
            raise forms.ValidationError(
                gettext(
                    "“%(period)s” is not a period: write a month such as 2026-03 or a range "
                    "such as 2026-03-01..2026-03-15, between 1900 and 2999."
                )
                % {"period": text},
                code="period",
            ) from exc


class PackVerifyForm(forms.Form):
    pack = forms.FileField(label=_("Evidence pack (.zip)"))


def _page(
    request: HttpRequest,
    *,
    export_form: PackExportForm | None = None,
    verify_form: PackVerifyForm | None = None,
    verdict: PackVerdict | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {
        "retention": archive_retention_overview(),
        "runs": archive_runs_recent(),
        "exports": archive_packs_exported(),
        "export_form": export_form or PackExportForm(),
        "verify_form": verify_form or PackVerifyForm(),
        "verdict": verdict,
        "help": "archive",
    }
    return render(request, "web/archive.html", context, status=status)


def audit_viewers_only(
    view: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """The page, the pack and the verification are for holders of `audit.view` over the whole
    company: a pack holds the audit log of a period and the chain around it (every unit's
    events), and the page counts the whole company's documents."""

    @wraps(view)
    def guarded(request: HttpRequest) -> HttpResponseBase:
        require_company_wide(_user(request), Perm.AUDIT_VIEW, what=gettext("the archive"))
        return view(request)

    return guarded


@login_required
@require_GET
@audit_viewers_only
def archive(request: HttpRequest) -> HttpResponseBase:
    return _page(request)


@login_required
@require_POST
@audit_viewers_only
def archive_export(request: HttpRequest) -> HttpResponseBase:
    form = PackExportForm(request.POST)
    if not form.is_valid():
        return _page(request, export_form=form, status=400)
    try:
        code = form.cleaned_data["company"]
        return archive_pack_download(
            actor=_user(request),
            period=form.cleaned_data["period"],
            company=company_get(code) if code else None,
        )
    except DomainError as exc:
        form.add_error(
            "period" if exc.details.get("field") == "period" else None, refusal_text(exc)
        )
        status = 403 if isinstance(exc, PermissionDenied) else 400
        return _page(request, export_form=form, status=status)


@login_required
@require_POST
@audit_viewers_only
def archive_verify(request: HttpRequest) -> HttpResponseBase:
    form = PackVerifyForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, verify_form=form, status=400)
    upload = form.cleaned_data["pack"]
    if upload.size > MAX_PACK_UPLOAD:
        form.add_error("pack", gettext("The file is larger than 200 MB."))
        return _page(request, verify_form=form, status=400)
    try:
        verdict = archive_pack_verify(upload.file, live=True)
    except DomainError as exc:
        form.add_error("pack", refusal_text(exc))
        return _page(request, verify_form=form, status=400)
    return _page(request, verdict=verdict)
