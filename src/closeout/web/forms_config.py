"""Forms of the configuration pages: they parse input only; the services check and record."""

from decimal import Decimal
from typing import Any

from django import forms
from django.db import models
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from closeout.access.models import Role
from closeout.access.permissions import Perm
from closeout.alerts.models import AlertCode
from closeout.approvals.models import ExceptionCondition, RequestAction
from closeout.approvals.routes import RouteInput, StepInput
from closeout.closing.models import ClosePolicy, ReasonAction, Severity
from closeout.closing.rules import Rule
from closeout.closing.types import close_spec_for
from closeout.core.inputs import MAX_DAYS
from closeout.core.models import Company, OrgUnit
from closeout.documents.models import DocType
from closeout.web.forms import date_field

REASON_MAX = 2000


def unit_choices(*, blank: str) -> list[tuple[str, str]]:
    """Every organisation unit (a company is one too), by its place in the tree."""
    units = OrgUnit.objects.order_by("path").values_list("code", "name")
    return [("", blank)] + [(code, f"{code} {name}") for code, name in units]


def type_choices(*, blank: str | None = None) -> list[tuple[str, str]]:
    first = [("", blank)] if blank is not None else []
    return first + [(code, str(label)) for code, label in DocType.choices]


def _localised(choices: Any) -> list[tuple[str, str]]:
    return [(value, str(label)) for value, label in choices]


class PolicyScopeForm(forms.Form):
    doc_type = forms.ChoiceField(label=_("Document type"))
    org_unit = forms.ChoiceField(label=_("Organisation unit"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["doc_type"].choices = type_choices()  # type: ignore[attr-defined]
        self.fields["org_unit"].choices = unit_choices(blank=str(_("default (every unit)")))  # type: ignore[attr-defined]


# The policy's amounts and percentages, as the model declares them.
DECIMAL_FIELDS = tuple(
    f.name for f in ClosePolicy._meta.concrete_fields if isinstance(f, models.DecimalField)
)
POLICY_LABELS = {
    "under_qty_pct": _("Under-delivery tolerance %"),
    "over_qty_pct": _("Over-delivery tolerance %"),
    "match_qty_pct": _("Invoice quantity tolerance %"),
    "amount_tolerance_abs": _("Amount tolerance"),
    "amount_tolerance_pct": _("Amount tolerance %"),
    "write_off_amount": _("Write-off tolerance"),
    "variance_value_limit": _("Count variance value limit"),
    "budget_tolerance_pct": _("Budget tolerance %"),
    "grace_days": _("Grace days"),
    "auto_close_enabled": _("Automatic close"),
    "direct_close_needs_approval": _("Direct close needs approval"),
}


class PolicyForm(forms.Form):
    """The values of one close policy, and per rule a switch and a severity."""

    def __init__(self, *args: Any, doc_type: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in DECIMAL_FIELDS:
            self.fields[name] = forms.DecimalField(
                label=POLICY_LABELS[name], min_value=0, max_digits=20, decimal_places=4
            )
        self.fields["grace_days"] = forms.IntegerField(
            label=POLICY_LABELS["grace_days"], min_value=0, max_value=MAX_DAYS
        )
        for name in ("auto_close_enabled", "direct_close_needs_approval"):
            self.fields[name] = forms.BooleanField(label=POLICY_LABELS[name], required=False)
        self.rules: tuple[Rule, ...] = close_spec_for(doc_type).rules
        for rule in self.rules:
            self.fields[f"rule_{rule.code}_on"] = forms.BooleanField(required=False)
            self.fields[f"rule_{rule.code}_severity"] = forms.ChoiceField(
                choices=_localised(Severity.choices)
            )

    @staticmethod
    def initial_for(policy: ClosePolicy) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(policy, name) for name in POLICY_LABELS}
        for rule in close_spec_for(policy.doc_type).rules:
            setting = (policy.rule_settings or {}).get(rule.code, {})
            data[f"rule_{rule.code}_on"] = setting.get("enabled", True)
            data[f"rule_{rule.code}_severity"] = setting.get("severity", rule.severity)
        return data

    def rule_rows(self) -> list[tuple[Rule, forms.BoundField, forms.BoundField]]:
        return [
            (rule, self[f"rule_{rule.code}_on"], self[f"rule_{rule.code}_severity"])
            for rule in self.rules
        ]

    def changes_from(self, base: ClosePolicy) -> dict[str, Any]:
        """The values that differ from `base` (the unit's own policy, or a new one's defaults)."""
        d = self.cleaned_data
        values: dict[str, Any] = {name: d[name] for name in POLICY_LABELS}
        settings: dict[str, dict[str, Any]] = {}
        for rule in self.rules:
            setting: dict[str, Any] = {}
            if not d[f"rule_{rule.code}_on"]:
                setting["enabled"] = False
            if d[f"rule_{rule.code}_severity"] != rule.severity:
                setting["severity"] = d[f"rule_{rule.code}_severity"]
            if setting:
                settings[rule.code] = setting
        values["rule_settings"] = settings
        return {
            k: v
            for k, v in values.items()
            if (Decimal(getattr(base, k)) != v if k in DECIMAL_FIELDS else getattr(base, k) != v)
        }


class CompanyChoice:
    """A configuration form's `company` field: the scopes the user manages, the group (every
    company, code "") and their companies; `company_chosen` is the one picked."""

    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]
    _companies: list[Company]

    def set_companies(self, *, group: bool, companies: list[Company]) -> None:
        self._companies = companies
        first = [("", gettext("Group (every company)"))] if group else []
        choices = first + [(c.code, f"{c.code} {c.name}") for c in companies]
        self.fields["company"].choices = choices  # type: ignore[attr-defined]

    def company_chosen(self) -> Company | None:
        """The company picked (None: the group), once the form is valid."""
        code = self.cleaned_data.get("company", "")
        return next((c for c in self._companies if c.code == code), None)


class ReasonForm(CompanyChoice, forms.Form):
    company = forms.ChoiceField(
        label=_("Company"),
        required=False,
        help_text=_("A company's code overrides the group's code of the same name there."),
    )
    code = forms.CharField(label=_("Code"), max_length=40)
    action = forms.ChoiceField(label=_("Used for"))
    label_zh = forms.CharField(label=_("Name (Chinese)"), max_length=100)
    label_en = forms.CharField(label=_("Name (English)"), max_length=100)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = _localised(ReasonAction.choices)  # type: ignore[attr-defined]


class AlertRuleForm(CompanyChoice, forms.Form):
    company = forms.ChoiceField(
        label=_("Company"),
        required=False,
        help_text=_("A company's rule replaces the group's rule of the same alert there."),
    )
    code = forms.ChoiceField(label=_("Alert"))
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    days = forms.IntegerField(label=_("Days"), min_value=0, max_value=MAX_DAYS, initial=0)
    recipients_role = forms.ChoiceField(label=_("Recipients' role"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = _localised(AlertCode.choices)  # type: ignore[attr-defined]
        self.fields["recipients_role"].choices = [  # type: ignore[attr-defined]
            (r.code, role_name(r)) for r in Role.objects.order_by("code")
        ]


class PeriodForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=40)
    start = date_field(_("Start"), required=True)
    end = date_field(_("End"), required=True)


class ReasonTextForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=REASON_MAX)


STEP_ROWS = 4


class RouteForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    action = forms.ChoiceField(label=_("For"))
    doc_type = forms.ChoiceField(label=_("Document type"), required=False)
    org_unit = forms.ChoiceField(label=_("Organisation unit"), required=False)
    condition = forms.ChoiceField(label=_("Condition"))
    min_open_value = forms.DecimalField(
        label=_("Open value from"), required=False, min_value=0, max_digits=20, decimal_places=4
    )
    max_open_value = forms.DecimalField(
        label=_("Open value below"), required=False, min_value=0, max_digits=20, decimal_places=4
    )
    priority = forms.IntegerField(label=_("Priority"), min_value=0, max_value=100000, initial=100)
    for_closed_period = forms.BooleanField(label=_("Reopens in closed periods"), required=False)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        f = self.fields
        f["action"].choices = _localised(RequestAction.choices)  # type: ignore[attr-defined]
        f["doc_type"].choices = type_choices(blank=str(_("any")))  # type: ignore[attr-defined]
        f["org_unit"].choices = unit_choices(blank=str(_("any")))  # type: ignore[attr-defined]
        f["condition"].choices = _localised(ExceptionCondition.choices)  # type: ignore[attr-defined]
        roles = [("", "—")] + [(r.code, role_name(r)) for r in Role.objects.order_by("code")]
        for i in range(1, STEP_ROWS + 1):
            f[f"step{i}_role"] = forms.ChoiceField(label=_("Role"), required=False, choices=roles)
            f[f"step{i}_name"] = forms.CharField(label=_("Step"), required=False, max_length=100)
            f[f"step{i}_sla"] = forms.IntegerField(
                label=_("SLA hours"), required=False, min_value=1, max_value=24 * 365
            )

    def step_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (self[f"step{i}_role"], self[f"step{i}_name"], self[f"step{i}_sla"])
            for i in range(1, STEP_ROWS + 1)
        ]

    def route_input(self) -> RouteInput:
        d = self.cleaned_data
        steps = [
            StepInput(
                d[f"step{i}_name"] or d[f"step{i}_role"],
                d[f"step{i}_role"],
                d[f"step{i}_sla"] or 24,
            )
            for i in range(1, STEP_ROWS + 1)
            if d[f"step{i}_role"]
        ]
        return RouteInput(
            name=d["name"],
            action=d["action"],
            steps=steps,
            doc_type=d["doc_type"],
            org_unit=d["org_unit"],
            condition=d["condition"],
            min_open_value=d["min_open_value"],
            max_open_value=d["max_open_value"],
            for_closed_period=d["for_closed_period"],
            priority=d["priority"],
            active=d["active"],
        )


class GrantForm(forms.Form):
    username = forms.CharField(label=_("User"), max_length=150)
    role = forms.ChoiceField(label=_("Role"))
    org_unit = forms.ChoiceField(label=_("Organisation unit"))
    doc_types = forms.MultipleChoiceField(
        label=_("Document types"), required=False, widget=forms.CheckboxSelectMultiple
    )
    valid_until = date_field(_("Valid until (temporary grant)"))
    reason = forms.CharField(label=_("Reason"), required=False, max_length=REASON_MAX)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        f = self.fields
        f["role"].choices = [  # type: ignore[attr-defined]
            (r.code, role_name(r)) for r in Role.objects.order_by("code")
        ]
        f["org_unit"].choices = unit_choices(blank="—")[1:]  # type: ignore[attr-defined]
        f["doc_types"].choices = type_choices()  # type: ignore[attr-defined]


class WebhookForm(CompanyChoice, forms.Form):
    company = forms.ChoiceField(
        label=_("Company"),
        required=False,
        help_text=_("A company's endpoint receives the events of that company's documents only."),
    )
    name = forms.CharField(label=_("Name"), max_length=100)
    url = forms.CharField(label=_("Address (URL)"), max_length=500)
    events = forms.CharField(
        label=_("Events"),
        required=False,
        max_length=1000,
        help_text=_("Names separated by commas; empty: every event."),
    )

    def event_list(self) -> list[str]:
        return [e.strip() for e in self.cleaned_data["events"].split(",") if e.strip()]


class CompanyForm(forms.Form):
    """A new company (公司): a new top organisation unit with its base currency and calendar."""

    code = forms.CharField(label=_("Company code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=200)
    currency = forms.CharField(
        label=_("Base currency"), max_length=3, help_text=_("3 letters, such as CNY or USD.")
    )
    time_zone = forms.CharField(
        label=_("Time zone"),
        max_length=60,
        required=False,
        help_text=_("Such as Asia/Shanghai; empty: the installation's time zone."),
    )
    fiscal_year_start_month = forms.TypedChoiceField(
        label=_("Fiscal year starts in month"),
        coerce=int,
        choices=[(m, str(m)) for m in range(1, 13)],
        initial=1,
    )


class RateForm(forms.Form):
    """One rate of a rate table (汇率表): 1 currency = rate to-currency from the day on."""

    table = forms.CharField(label=_("Rate table"), max_length=40)
    currency = forms.CharField(label=_("Currency"), max_length=3)
    to_currency = forms.CharField(label=_("To currency"), max_length=3)
    day = date_field(_("From"), required=True)
    rate = forms.DecimalField(
        label=_("Rate"),
        max_digits=18,
        decimal_places=8,
        help_text=_("1 currency = rate to-currency"),
    )


def role_name(role: Role) -> str:
    """A role's name in the page language."""
    return role.name_en if (get_language() or "").startswith("en") else role.name_zh


class RolePermissionsForm(forms.Form):
    """The own permissions of one role (设置 → 角色), ticked; the service checks the change."""

    role = forms.CharField(max_length=40)
    perm = forms.MultipleChoiceField(label=_("Permissions"), choices=Perm.choices, required=False)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=REASON_MAX)
