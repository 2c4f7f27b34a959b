"""Forms of the workbench: they parse and check input only; services decide."""

from datetime import date, datetime
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from closeout.access.login_throttle import (
    lockout_minutes,
    login_failure_record,
    login_locked_until,
    login_success_record,
)
from closeout.audit.models import AuditAction
from closeout.closing.dimensions import dimensions_of
from closeout.closing.models import ReasonAction, ReasonCode
from closeout.closing.queue import STATES_TO_CLOSE
from closeout.closing.reasons import reason_choices
from closeout.closing.services import REMARK_MAX
from closeout.core.inputs import DATE_MAX, DATE_MIN, MAX_DAYS, date_problem, non_ascii_digit
from closeout.documents.models import CloseState
from closeout.web.templatetags.closeout_web import audit_label


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "-"
    return str(request.META.get("REMOTE_ADDR", "-"))


class LoginThrottleMixin:
    """The one sign-in throttle of every login form (access/login_throttle.py): a locked
    account or address is refused before its password is checked; each failure is counted."""

    request: HttpRequest | None
    data: Any

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username", ""))
        address = client_address(self.request)
        until = login_locked_until(username, address)
        if until is not None:
            raise self._locked(until)
        try:
            data: dict[str, Any] = super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            if getattr(self, "user_cache", None) is not None:
                raise  # the password was right (inactive, or not staff for the admin)
            started = login_failure_record(username, address)
            if started is not None:
                raise self._locked(started) from None
            raise
        if getattr(self, "user_cache", None) is not None:
            # Only a real sign-in clears the count (a post without a password checks nothing).
            login_success_record(username, address)
        return data

    @staticmethod
    def _locked(until: datetime) -> forms.ValidationError:
        return forms.ValidationError(
            gettext(
                "Too many failed sign-in attempts. Sign-in is locked for %(minutes)d "
                "minutes; try again later or ask an administrator."
            )
            % {"minutes": lockout_minutes(until)},
            code="locked",
        )


# --- fields that parse numbers and dates strictly --------------------------------------------

_ASCII_DIGITS_MESSAGE = _("Write numbers and dates with the digits 0-9.")


class DayField(forms.DateField):
    """A date written with the digits 0-9 (Django's own takes "２０２６-03-01"), between
    1900-01-01 and 2999-12-31."""

    def to_python(self, value: Any) -> date | None:
        if isinstance(value, str) and non_ascii_digit(value):
            raise forms.ValidationError(_ASCII_DIGITS_MESSAGE, code="digits")
        result = super().to_python(value)
        if result is not None and date_problem(result):
            raise forms.ValidationError(
                gettext("Enter a date between %(first)s and %(last)s.")
                % {"first": DATE_MIN.isoformat(), "last": DATE_MAX.isoformat()},
                code="date_range",
            )
        return result


class WholeNumberField(forms.IntegerField):
    """A whole number written with the digits 0-9 (Django's own takes "١٢")."""

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str) and non_ascii_digit(value):
            raise forms.ValidationError(_ASCII_DIGITS_MESSAGE, code="digits")
        return super().to_python(value)


class ThrottledLoginForm(LoginThrottleMixin, AuthenticationForm):
    """The workbench's login form."""


class ThrottledAdminLoginForm(LoginThrottleMixin, AdminAuthenticationForm):
    """The admin's login form (admin.site.login_form, set in urls.py)."""


class IsoDateInput(forms.DateInput):
    """<input type="date">: browsers accept only ISO values (2026-12-03) there, whatever the
    page's language; a localised value (2026/12/03 in Chinese) is dropped as if empty."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def date_field(label: StrOrPromise, *, required: bool = False) -> forms.DateField:
    """The one date field of the workbench: strict digits and range (DayField), ISO value
    in the browser's date input (IsoDateInput)."""
    return DayField(label=label, required=required, widget=IsoDateInput)


class ReasonField(forms.ChoiceField):
    """A reason code the user must choose: the list opens on "Choose…", never on a reason."""

    def __init__(self, *, label: StrOrPromise, required_message: StrOrPromise) -> None:
        super().__init__(label=label, error_messages={"required": required_message})

    def set_reasons(
        self, action: str, company_id: int | None = None, *, any_company: bool = False
    ) -> None:
        """The reasons valid for a document of the company (the group's and its own);
        `any_company`: every code in force in some company (a batch over several)."""
        from django.utils.translation import get_language

        english = (get_language() or "").startswith("en")
        if any_company:
            by_code: dict[str, ReasonCode] = {}
            for r in ReasonCode.objects.filter(action=action, active=True, system=False):
                if r.code not in by_code or r.company_id is None:  # the group's name first
                    by_code[r.code] = r
            reasons = sorted(by_code.values(), key=lambda r: r.code)
        else:
            reasons = reason_choices(action, company_id)
        self.choices = [("", gettext("Choose…"))] + [
            (r.code, r.label_en if english else r.label_zh) for r in reasons
        ]


VERDICTS = [
    ("", _("any")),
    ("ready", _("ready to close")),
    ("warning", _("warning")),
    ("exception", _("exception")),
    ("blocked", _("blocked")),
]
SORTS = ["-id", "id", "number", "-number", "document_date", "-document_date"]
SORTS += ["total_amount_company", "-total_amount_company"]
YES_NO = [("", _("any")), ("yes", _("yes")), ("no", _("no"))]


class QueueForm(forms.Form):
    number = forms.CharField(label=_("Number"), required=False, max_length=60)
    partner = forms.CharField(label=_("Partner"), required=False, max_length=100)
    date_from = date_field(_("Date from"))
    date_to = date_field(_("Date to"))
    state = forms.MultipleChoiceField(
        label=_("Close state"),
        required=False,
        choices=CloseState.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: the documents still to close."),
    )
    org_unit = forms.CharField(label=_("Organisation"), required=False, max_length=40)
    verdict = forms.ChoiceField(label=_("Checklist"), required=False, choices=VERDICTS)
    quarantined = forms.ChoiceField(label=_("Has quarantined"), required=False, choices=YES_NO)
    min_age_days = WholeNumberField(
        label=_("Age at least (days)"), required=False, min_value=0, max_value=MAX_DAYS
    )
    closed_for = forms.ChoiceField(label=_("Closed for"), required=False, choices=[])
    open_for = forms.ChoiceField(label=_("Still open for"), required=False, choices=[])
    sort = forms.ChoiceField(required=False, choices=[(s, s) for s in SORTS])
    after = forms.CharField(required=False, max_length=200)
    before = forms.CharField(required=False, max_length=200)

    # Fields that are not part of the filter itself.
    PAGING = ("sort", "after", "before")

    def __init__(self, *args: Any, doc_type: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Close dimensions (关闭维度) of the type: e.g. closed for receiving, invoicing open.
        dimensions = dimensions_of(doc_type)
        for name in ("closed_for", "open_for"):
            field = self.fields[name]
            if not dimensions:
                del self.fields[name]
            elif isinstance(field, forms.ChoiceField):
                field.choices = [("", _("any"))] + [(d.code, d.label) for d in dimensions]
        state = self.fields["state"]
        assert isinstance(state, forms.ChoiceField)  # noqa: S101
        state.choices = [(value, str(label)) for value, label in CloseState.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", gettext("The end date is before the start date."))
        return data

    @staticmethod
    def default_filter(doc_type: str) -> dict[str, Any]:
        """The tab before any filter: the documents of the type still to close."""
        return {"doc_type": doc_type, "close_states": list(STATES_TO_CLOSE)}

    @classmethod
    def clean_query(cls, query: str, doc_type: str) -> str:
        """A queue query string reduced to the filter's own valid fields (for saving)."""
        given = QueryDict(query[:2000])
        if not cls(given, doc_type=doc_type).is_valid():
            return ""
        kept = QueryDict(mutable=True)
        for name in cls.base_fields:
            if name not in ("after", "before"):
                kept.setlist(name, [v for v in given.getlist(name) if v])
        return kept.urlencode()

    def filter_dict(self, doc_type: str) -> dict[str, Any]:
        """The QueueFilter fields (as strings and lists), also saved with batch jobs."""
        d = self.cleaned_data
        quarantined = {"yes": True, "no": False}.get(d.get("quarantined") or "")
        return self.default_filter(doc_type) | {
            "doc_type": doc_type,
            "number": d.get("number") or "",
            "partner": d.get("partner") or "",
            "date_from": d["date_from"].isoformat() if d.get("date_from") else None,
            "date_to": d["date_to"].isoformat() if d.get("date_to") else None,
            "close_states": list(d.get("state") or STATES_TO_CLOSE),
            "org_unit": (d.get("org_unit") or "").strip(),
            "verdict": d.get("verdict") or "",
            "has_quarantined": quarantined,
            "min_age_days": d.get("min_age_days"),
            "closed_for": d.get("closed_for") or "",
            "open_for": d.get("open_for") or "",
        }


def remark_field(label: StrOrPromise, *, required: bool = False, rows: int = 3) -> forms.CharField:
    """Free text of at most REMARK_MAX characters (the services check it too); the page counts
    the characters as they are typed (closeout.js, data-counter)."""
    return forms.CharField(
        label=label,
        required=required,
        max_length=REMARK_MAX,
        widget=forms.Textarea(attrs={"rows": rows, "data-counter": "1"}),
    )


class CloseForm(forms.Form):
    reason = ReasonField(label=_("Close reason"), required_message=_("Choose a close reason."))
    remark = remark_field(_("Remark"))
    close_date = date_field(_("Close date"), required=True)
    lines = forms.TypedMultipleChoiceField(
        label=_("Lines to close"), required=False, coerce=int, widget=forms.CheckboxSelectMultiple
    )
    attachments = forms.FileField(label=_("Attachment"), required=False)

    def __init__(
        self, *args: Any, line_nos: list[int], company_id: int | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("initial", {}).setdefault("close_date", timezone.localdate())
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, ReasonField)  # noqa: S101 (narrows the type)
        reason.set_reasons(ReasonAction.CLOSE, company_id)
        lines = self.fields["lines"]
        assert isinstance(lines, forms.ChoiceField)  # noqa: S101
        lines.choices = [(n, str(n)) for n in line_nos]

    def chosen_lines(self, all_open: list[int]) -> list[int] | None:
        """None (the whole document) unless a strict subset of the open lines is chosen."""
        chosen = sorted(set(self.cleaned_data.get("lines") or []))
        return None if not chosen or set(chosen) >= set(all_open) else chosen

    def attachment_files(self) -> list[tuple[str, bytes]]:
        upload = self.cleaned_data.get("attachments")
        return [(upload.name, upload.read())] if upload else []


class ReopenForm(forms.Form):
    reason = ReasonField(label=_("Reopen reason"), required_message=_("Choose a reopen reason."))
    remark = remark_field(_("Remark"), required=True)

    def __init__(self, *args: Any, company_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, ReasonField)  # noqa: S101
        reason.set_reasons(ReasonAction.REOPEN, company_id)


class DecideForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"), choices=[("approve", _("Approve")), ("reject", _("Reject"))]
    )
    comment = remark_field(_("Comment"), rows=2)
    requests = forms.TypedMultipleChoiceField(
        label=_("Requests"), required=False, coerce=int, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, request_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["requests"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101
        field.choices = [(i, f"#{i}") for i in request_ids]


class BatchForm(forms.Form):
    reason = ReasonField(label=_("Close reason"), required_message=_("Choose a close reason."))
    remark = remark_field(_("Remark"), rows=2)
    close_date = date_field(_("Close date"), required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("close_date", timezone.localdate())
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, ReasonField)  # noqa: S101
        reason.set_reasons(ReasonAction.CLOSE, any_company=True)


class AuditFilterForm(forms.Form):
    document = forms.CharField(label=_("Document"), required=False, max_length=100)
    user = forms.CharField(label=_("User"), required=False, max_length=150)
    action = forms.TypedChoiceField(
        label=_("Action"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", _("any"))] + [(a.value, a.label) for a in AuditAction],
    )
    date_from = date_field(_("Date from"))
    date_to = date_field(_("Date to"))
    before = WholeNumberField(required=False, min_value=1, max_value=2**63 - 1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        action = self.fields["action"]
        assert isinstance(action, forms.ChoiceField)  # noqa: S101
        action.choices = [("", gettext("any"))] + [
            (a.value, audit_label(a.label)) for a in AuditAction
        ]


def today() -> date:
    return timezone.localdate()


class SavedFilterForm(forms.Form):
    name = forms.CharField(label=_("Name of the filter"), max_length=60, strip=True)


class PreferenceForm(forms.Form):
    """A user's own notification settings (the notifications page)."""

    language = forms.ChoiceField(
        label=_("Language of notifications"),
        choices=[("zh-hans", "简体中文"), ("en", "English")],
    )
    email_enabled = forms.BooleanField(label=_("Send notifications by e-mail too"), required=False)
