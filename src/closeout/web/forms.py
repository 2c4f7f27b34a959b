"""Forms of the workbench: they parse and check input only; services decide."""

from datetime import date
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from closeout.audit.models import AuditAction
from closeout.closing.models import ReasonAction, ReasonCode
from closeout.core.inputs import DATE_MAX, DATE_MIN, MAX_DAYS, date_problem, non_ascii_digit
from closeout.documents.models import CloseState
from closeout.web.templatetags.closeout_web import audit_label, lang_part

# Failed logins allowed per user name and per address before a lockout, and its length.
LOGIN_MAX_FAILURES = 5
LOGIN_LOCKOUT_SECONDS = 15 * 60


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "-"
    return str(request.META.get("REMOTE_ADDR", "-"))


def _throttle_keys(username: str, address: str) -> list[str]:
    return [f"closeout:login:user:{username.strip().lower()}", f"closeout:login:addr:{address}"]


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form, refusing further attempts after repeated failures for the same
    user name or from the same address (a counter in the cache, reset on success)."""

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username", ""))
        keys = _throttle_keys(username, client_address(self.request))
        if any(int(cache.get(key, 0)) >= LOGIN_MAX_FAILURES for key in keys):
            raise forms.ValidationError(
                gettext(
                    "Too many failed sign-in attempts. Sign-in is locked for %(minutes)d "
                    "minutes; try again later or ask an administrator."
                )
                % {"minutes": LOGIN_LOCKOUT_SECONDS // 60},
                code="locked",
            )
        try:
            data = super().clean()
        except forms.ValidationError:
            for key in keys:
                cache.add(key, 0, LOGIN_LOCKOUT_SECONDS)
                try:
                    cache.incr(key)
                except ValueError:
                    cache.set(key, 1, LOGIN_LOCKOUT_SECONDS)
            raise
        cache.delete_many(keys)
        return data


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


def _reason_choices(action: str) -> list[tuple[str, str]]:
    from django.utils.translation import get_language

    english = (get_language() or "").startswith("en")
    return [
        (r.code, f"{r.label_en if english else r.label_zh} ({r.code})")
        for r in ReasonCode.objects.filter(action=action, active=True, system=False)
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
    date_from = DayField(label=_("Date from"), required=False)
    date_to = DayField(label=_("Date to"), required=False)
    state = forms.MultipleChoiceField(
        label=_("Close state"), required=False, choices=CloseState.choices
    )
    org_unit = forms.CharField(label=_("Organisation"), required=False, max_length=40)
    verdict = forms.ChoiceField(label=_("Checklist"), required=False, choices=VERDICTS)
    quarantined = forms.ChoiceField(label=_("Has quarantined"), required=False, choices=YES_NO)
    min_age_days = WholeNumberField(
        label=_("Age at least (days)"), required=False, min_value=0, max_value=MAX_DAYS
    )
    sort = forms.ChoiceField(required=False, choices=[(s, s) for s in SORTS])
    after = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state = self.fields["state"]
        assert isinstance(state, forms.ChoiceField)  # noqa: S101
        state.choices = [(value, lang_part(label)) for value, label in CloseState.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", gettext("The end date is before the start date."))
        return data

    def filter_dict(self, doc_type: str) -> dict[str, Any]:
        """The QueueFilter fields (as strings and lists), also saved with batch jobs."""
        d = self.cleaned_data
        quarantined = {"yes": True, "no": False}.get(d.get("quarantined") or "")
        return {
            "doc_type": doc_type,
            "number": d.get("number") or "",
            "partner": d.get("partner") or "",
            "date_from": d["date_from"].isoformat() if d.get("date_from") else None,
            "date_to": d["date_to"].isoformat() if d.get("date_to") else None,
            "close_states": list(d.get("state") or []),
            "org_unit": (d.get("org_unit") or "").strip(),
            "verdict": d.get("verdict") or "",
            "has_quarantined": quarantined,
            "min_age_days": d.get("min_age_days"),
        }


class CloseForm(forms.Form):
    reason = forms.ChoiceField(label=_("Close reason"))
    remark = forms.CharField(
        label=_("Remark"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    close_date = DayField(label=_("Close date"), widget=forms.DateInput(attrs={"type": "date"}))
    lines = forms.TypedMultipleChoiceField(
        label=_("Lines to close"), required=False, coerce=int, widget=forms.CheckboxSelectMultiple
    )
    attachments = forms.FileField(label=_("Attachment"), required=False)

    def __init__(self, *args: Any, line_nos: list[int], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("close_date", timezone.localdate())
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, forms.ChoiceField)  # noqa: S101 (narrows the type)
        reason.choices = _reason_choices(ReasonAction.CLOSE)
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
    reason = forms.ChoiceField(label=_("Reopen reason"))
    remark = forms.CharField(label=_("Remark"), widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, forms.ChoiceField)  # noqa: S101
        reason.choices = _reason_choices(ReasonAction.REOPEN)


class DecideForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"), choices=[("approve", _("Approve")), ("reject", _("Reject"))]
    )
    comment = forms.CharField(
        label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    requests = forms.TypedMultipleChoiceField(
        label=_("Requests"), required=False, coerce=int, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, request_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["requests"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101
        field.choices = [(i, f"#{i}") for i in request_ids]


class BatchForm(forms.Form):
    reason = forms.ChoiceField(label=_("Close reason"))
    remark = forms.CharField(
        label=_("Remark"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    close_date = DayField(label=_("Close date"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("close_date", timezone.localdate())
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, forms.ChoiceField)  # noqa: S101
        reason.choices = _reason_choices(ReasonAction.CLOSE)


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
    date_from = DayField(label=_("Date from"), required=False)
    date_to = DayField(label=_("Date to"), required=False)
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
