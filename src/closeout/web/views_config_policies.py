"""Close policies with a what-if before saving, reason codes, alert rules and exchange-rate
tables in the configuration pages (设置). Every change goes through its service."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext

from closeout.access.models import Role
from closeout.access.permissions import Perm
from closeout.access.selectors import companies_managed
from closeout.alerts.services import alert_rule_list, alert_rule_save
from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_for, policy_update
from closeout.closing.reasons import reason_code_list, reason_code_save, reason_scopes_managed
from closeout.closing.whatif import policy_whatif
from closeout.core.companies import book_rate_table
from closeout.core.errors import NotFound
from closeout.core.lookup import org_unit_by_code
from closeout.core.models import ExchangeRate
from closeout.reports.group import exchange_rate_set
from closeout.web.config_pages import config_done, config_page, config_try, config_view
from closeout.web.forms_config import (
    AlertRuleForm,
    PolicyForm,
    PolicyScopeForm,
    RateForm,
    ReasonForm,
    role_name,
)
from closeout.web.views import _refused, _user

# --- close policies with what-if -----------------------------------------------------------


@config_view(Perm.POLICY_MANAGE)
def config_policies(request: HttpRequest) -> HttpResponse:
    policies = ClosePolicy.objects.select_related("org_unit").order_by("doc_type", "org_unit__path")
    scope = PolicyScopeForm(request.GET or None)
    if scope.is_bound and scope.is_valid():
        return _policy_edit(request, scope.cleaned_data["doc_type"], scope.cleaned_data["org_unit"])
    return config_page(request, "web/config/policies.html", {"policies": policies, "scope": scope})


def _policy_edit(request: HttpRequest, doc_type: str, unit_code: str) -> HttpResponse:
    user = _user(request)
    unit = org_unit_by_code(unit_code) if unit_code else None
    own = ClosePolicy.objects.filter(doc_type=doc_type, org_unit=unit).first()
    try:
        shown = own or policy_for(doc_type, unit)
    except NotFound as exc:
        return _refused(request, exc)
    base = own or ClosePolicy(doc_type=doc_type, org_unit=unit)
    form = PolicyForm(
        request.POST or None, doc_type=doc_type, initial=PolicyForm.initial_for(shown)
    )
    whatif = None
    if request.method == "POST" and form.is_valid():
        changes = form.changes_from(base)
        if request.POST.get("op") == "save":
            if config_try(
                form,
                lambda: policy_update(
                    actor=user, doc_type=doc_type, org_unit=unit_code, changes=changes
                ),
            ):
                return config_done(
                    request,
                    gettext("Policy saved."),
                    f"{reverse('web:config_policies')}?doc_type={doc_type}&org_unit={unit_code}",
                )
        else:
            holder: list[Any] = []
            config_try(
                form,
                lambda: holder.append(
                    policy_whatif(
                        actor=user, doc_type=doc_type, org_unit=unit_code, changes=changes
                    )
                ),
            )
            whatif = holder[0] if holder else None
    return config_page(
        request,
        "web/config/policy.html",
        {
            "form": form,
            "doc_type": doc_type,
            "unit": unit,
            "own": own,
            "inherited": shown if own is None else None,
            "whatif": whatif,
        },
        refused=form.is_bound and bool(form.errors),
    )


# --- reason codes --------------------------------------------------------------------------


@config_view(Perm.POLICY_MANAGE)
def config_reasons(request: HttpRequest) -> HttpResponse:
    """Reason codes of the group and of the companies the user manages (never another's)."""
    user = _user(request)
    group, managed = reason_scopes_managed(user)
    reasons = reason_code_list(actor=user)
    wanted = (request.GET.get("code", ""), request.GET.get("company", ""))
    chosen = next(
        (r for r in reasons if (r.code, r.company.code if r.company else "") == wanted), None
    )
    initial = (
        {f: getattr(chosen, f) for f in ("code", "action", "label_zh", "label_en", "active")}
        | {"company": wanted[1]}
        if chosen
        else {"active": True, "company": "" if group else (managed[0].code if managed else "")}
    )
    form = ReasonForm(request.POST or None, initial=initial)
    form.set_companies(group=group, companies=managed)
    saved = request.method == "POST" and form.is_valid()
    if saved:
        data = dict(form.cleaned_data)
        del data["company"]
        company = form.company_chosen()
        if config_try(form, lambda: reason_code_save(actor=user, company=company, **data)):
            return config_done(request, gettext("Reason code saved."), "web:config_reasons")
    return config_page(
        request,
        "web/config/reasons.html",
        {"form": form, "reasons": reasons, "chosen": chosen},
        refused=form.is_bound and bool(form.errors),
    )


# --- alert rules ---------------------------------------------------------------------------


@config_view(Perm.POLICY_MANAGE)
def config_alerts(request: HttpRequest) -> HttpResponse:
    """Alert rules of the group and of the companies the user manages (never another's)."""
    user = _user(request)
    group, managed = companies_managed(user, str(Perm.POLICY_MANAGE))
    rules = alert_rule_list(actor=user)
    wanted = (request.GET.get("code", ""), request.GET.get("company", ""))
    chosen = next(
        (r for r in rules if (r.code, r.company.code if r.company else "") == wanted), None
    )
    initial = (
        {f: getattr(chosen, f) for f in ("code", "active", "days", "recipients_role")}
        | {"company": wanted[1]}
        if chosen
        else {"active": True, "company": "" if group else (managed[0].code if managed else "")}
    )
    roles = {r.code: role_name(r) for r in Role.objects.all()}
    form = AlertRuleForm(request.POST or None, initial=initial)
    form.set_companies(group=group, companies=managed)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        del data["company"]
        company = form.company_chosen()
        if config_try(form, lambda: alert_rule_save(actor=user, company=company, **data)):
            return config_done(request, gettext("Alert rule saved."), "web:config_alerts")
    return config_page(
        request,
        "web/config/alerts.html",
        {
            "form": form,
            "rules": rules,
            "chosen": chosen,
            "rows": [(r, roles.get(r.recipients_role, r.recipients_role)) for r in rules],
        },
        refused=form.is_bound and bool(form.errors),
    )


# --- exchange rates -----------------------------------------------------------------------


@config_view(Perm.POLICY_MANAGE)
def config_rates(request: HttpRequest) -> HttpResponse:
    """The rate tables (汇率表) of the group view and of documents sent without a rate; a rate
    set through `exchange_rate_set` (policy.manage over the whole installation, audited)."""
    user = _user(request)
    form = RateForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        if config_try(
            form,
            lambda: exchange_rate_set(
                actor=user,
                table=d["table"].strip(),
                currency=d["currency"].strip().upper(),
                to_currency=d["to_currency"].strip().upper(),
                day=d["day"],
                rate=d["rate"],
            ),
        ):
            return config_done(request, gettext("Exchange rate saved."), "web:config_rates")
    rates = ExchangeRate.objects.order_by("table", "currency", "to_currency", "-day")[:500]
    return config_page(
        request,
        "web/config/rates.html",
        {"form": form, "rates": rates, "book_table": book_rate_table()},
        refused=bool(form.errors),
    )
