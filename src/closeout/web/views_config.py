"""Configuration in the workbench (设置): close policies with a what-if before saving, reason
codes, approval routes, accounting periods, grants and webhook endpoints. Thin pages: every
change goes through its service (permission, separation of duties, audit with before/after)."""

from collections.abc import Callable
from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from closeout.access.companies import company_create
from closeout.access.models import Grant, Role
from closeout.access.permissions import Perm
from closeout.access.roles import role_permissions_set
from closeout.access.selectors import companies_managed
from closeout.access.services import (
    grant_create,
    grant_create_temporary,
    grant_revoke,
    require,
    user_has_perm,
)
from closeout.alerts.services import alert_rule_list, alert_rule_save
from closeout.approvals.models import AccountingPeriod, ApprovalRoute
from closeout.approvals.periods import period_create, period_set_closed
from closeout.approvals.routes import route_save
from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_for, policy_update
from closeout.closing.reasons import reason_code_list, reason_code_save, reason_scopes_managed
from closeout.closing.whatif import policy_whatif
from closeout.core.companies import book_rate_table, companies
from closeout.core.errors import DomainError, NotFound
from closeout.core.models import ExchangeRate, OrgUnit
from closeout.notifications.selectors import webhook_endpoint_list
from closeout.notifications.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_deactivate,
)
from closeout.reports.group import exchange_rate_set
from closeout.web.forms_config import (
    AlertRuleForm,
    CompanyForm,
    GrantForm,
    PeriodForm,
    PolicyForm,
    PolicyScopeForm,
    RateForm,
    ReasonForm,
    ReasonTextForm,
    RolePermissionsForm,
    RouteForm,
    WebhookForm,
    role_name,
)
from closeout.web.refusals import requires
from closeout.web.views import _refused, _user, refusal_text

SECTIONS = [
    ("config_policies", Perm.POLICY_MANAGE),
    ("config_reasons", Perm.POLICY_MANAGE),
    ("config_alerts", Perm.POLICY_MANAGE),
    ("config_routes", Perm.POLICY_MANAGE),
    ("config_periods", Perm.POLICY_MANAGE),
    ("config_grants", Perm.ACCESS_MANAGE),
    ("config_roles", Perm.ACCESS_MANAGE),
    ("config_webhooks", Perm.ACCESS_MANAGE),
    ("config_companies", Perm.ACCESS_MANAGE),
    ("config_rates", Perm.POLICY_MANAGE),
]


def _guarded(perm: Perm) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Sign-in, then the permission at all (the service checks the scope of each change)."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        checked = requires(perm, what=gettext_lazy("configuration"))(view)
        return login_required(require_http_methods(["GET", "POST"])(checked))  # type: ignore[return-value]

    return wrap


def _done(request: HttpRequest, text: str, to: str) -> HttpResponse:
    messages.success(request, text)
    return HttpResponseRedirect(to if to.startswith("/") else reverse(to))


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], *, refused: bool = False
) -> HttpResponse:
    return render(request, template, {"help": "", **context}, status=400 if refused else 200)


def _try(form: forms.Form, action: Callable[[], Any]) -> bool:
    """Run a service call; a refusal goes above the form (or next to the field it names)."""
    try:
        action()
    except DomainError as exc:
        field = str(exc.details.get("field", ""))
        form.add_error(field if field in form.fields else None, refusal_text(exc))
        return False
    return True


@login_required
@require_GET
def config_home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    sections = [name for name, perm in SECTIONS if user_has_perm(user, perm)]
    if not sections:
        require(user, Perm.POLICY_MANAGE, what=gettext("configuration"))
    return _page(request, "web/config/home.html", {"sections": sections})


# --- close policies with what-if -----------------------------------------------------------


@_guarded(Perm.POLICY_MANAGE)
def config_policies(request: HttpRequest) -> HttpResponse:
    policies = ClosePolicy.objects.select_related("org_unit").order_by("doc_type", "org_unit__path")
    scope = PolicyScopeForm(request.GET or None)
    if scope.is_bound and scope.is_valid():
        return _policy_edit(request, scope.cleaned_data["doc_type"], scope.cleaned_data["org_unit"])
    return _page(request, "web/config/policies.html", {"policies": policies, "scope": scope})


def _policy_edit(request: HttpRequest, doc_type: str, unit_code: str) -> HttpResponse:
    user = _user(request)
    unit = OrgUnit.objects.filter(code=unit_code).first() if unit_code else None
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
            if _try(
                form,
                lambda: policy_update(
                    actor=user, doc_type=doc_type, org_unit=unit_code, changes=changes
                ),
            ):
                return _done(
                    request,
                    gettext("Policy saved."),
                    f"{reverse('web:config_policies')}?doc_type={doc_type}&org_unit={unit_code}",
                )
        else:
            holder: list[Any] = []
            _try(
                form,
                lambda: holder.append(
                    policy_whatif(
                        actor=user, doc_type=doc_type, org_unit=unit_code, changes=changes
                    )
                ),
            )
            whatif = holder[0] if holder else None
    return _page(
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


@_guarded(Perm.POLICY_MANAGE)
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
        code = data.pop("company")
        company = next((c for c in managed if c.code == code), None)
        if _try(form, lambda: reason_code_save(actor=user, company=company, **data)):
            return _done(request, gettext("Reason code saved."), "web:config_reasons")
    return _page(
        request,
        "web/config/reasons.html",
        {"form": form, "reasons": reasons, "chosen": chosen},
        refused=form.is_bound and bool(form.errors),
    )


# --- alert rules ---------------------------------------------------------------------------


@_guarded(Perm.POLICY_MANAGE)
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
        code = data.pop("company")
        company = next((c for c in managed if c.code == code), None)
        if _try(form, lambda: alert_rule_save(actor=user, company=company, **data)):
            return _done(request, gettext("Alert rule saved."), "web:config_alerts")
    return _page(
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


# --- accounting periods --------------------------------------------------------------------


@_guarded(Perm.POLICY_MANAGE)
def config_periods(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    op = request.POST.get("op", "")
    form = PeriodForm(request.POST if op == "create" else None)
    change = ReasonTextForm(request.POST if op in ("close", "open") else None)
    if op == "create" and form.is_valid():
        if _try(form, lambda: period_create(actor=user, **form.cleaned_data)):
            return _done(request, gettext("Accounting period added."), "web:config_periods")
    elif op in ("close", "open") and change.is_valid():
        period_id = request.POST.get("period", "")
        if _try(
            change,
            lambda: period_set_closed(
                actor=user,
                period_id=int(period_id) if period_id.isdigit() and len(period_id) < 18 else 0,
                closed=op == "close",
                reason=change.cleaned_data["reason"],
            ),
        ):
            text = gettext("Period closed.") if op == "close" else gettext("Period opened again.")
            return _done(request, text, "web:config_periods")
    return _page(
        request,
        "web/config/periods.html",
        {"form": form, "change": change, "periods": AccountingPeriod.objects.order_by("-start")},
        refused=bool(form.errors or change.errors),
    )


# --- approval routes -----------------------------------------------------------------------


@_guarded(Perm.POLICY_MANAGE)
def config_routes(request: HttpRequest) -> HttpResponse:
    routes = ApprovalRoute.objects.select_related("org_unit").prefetch_related("steps__role")
    return _page(request, "web/config/routes.html", {"routes": routes})


@_guarded(Perm.POLICY_MANAGE)
def config_route(request: HttpRequest, pk: int = 0) -> HttpResponse:
    user = _user(request)
    route = ApprovalRoute.objects.filter(pk=pk).first() if pk else None
    if pk and route is None:
        return _refused(request, NotFound(gettext("No such page.")))
    form = RouteForm(request.POST or None, initial=_route_initial(route))
    valid = request.method == "POST" and form.is_valid()
    if valid and _try(
        form, lambda: route_save(actor=user, data=form.route_input(), route_id=pk or None)
    ):
        return _done(request, gettext("Approval route saved."), "web:config_routes")
    return _page(
        request,
        "web/config/route.html",
        {"form": form, "route": route},
        refused=form.is_bound and bool(form.errors),
    )


def _route_initial(route: ApprovalRoute | None) -> dict[str, Any]:
    if route is None:
        return {"priority": 100, "active": True, "condition": "any"}
    data: dict[str, Any] = {
        f: getattr(route, f)
        for f in ("name", "action", "doc_type", "condition", "min_open_value", "max_open_value")
    }
    data |= {"priority": route.priority, "active": route.active}
    data |= {"for_closed_period": route.for_closed_period}
    data["org_unit"] = route.org_unit.code if route.org_unit else ""
    for i, step in enumerate(route.steps.select_related("role").order_by("order"), start=1):
        data |= {f"step{i}_role": step.role.code, f"step{i}_name": step.name}
        data[f"step{i}_sla"] = step.sla_hours
    return data


# --- roles and grants ----------------------------------------------------------------------


@_guarded(Perm.ACCESS_MANAGE)
def config_grants(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    op = request.POST.get("op", "")
    form = GrantForm(request.POST if op == "grant" else None)
    revoke = ReasonTextForm(request.POST if op == "revoke" else None)
    if op == "grant" and form.is_valid():
        if _try(form, lambda: _grant(user, form.cleaned_data)):
            return _done(request, gettext("Role granted."), "web:config_grants")
    elif op == "revoke" and revoke.is_valid():
        grant = Grant.objects.filter(pk=_int(request.POST.get("grant", ""))).first()
        if grant is None:
            revoke.add_error(None, gettext("No such grant."))
        elif _try(
            revoke,
            lambda: grant_revoke(actor=user, grant=grant, reason=revoke.cleaned_data["reason"]),
        ):
            return _done(request, gettext("Grant revoked."), "web:config_grants")
    grants = (
        Grant.objects.active()
        .select_related("user", "role", "org_unit", "granted_by")
        .order_by("user__username", "pk")
    )
    return _page(
        request,
        "web/config/grants.html",
        {"form": form, "revoke": revoke, "grants": grants, "roles": Role.objects.order_by("code")},
        refused=bool(form.errors or revoke.errors),
    )


def _int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 18 else 0


def _grant(actor: Any, d: dict[str, Any]) -> Grant:
    target = get_user_model().objects.filter(username=d["username"].strip()).first()
    if target is None:
        raise NotFound(
            gettext("No user named “%(name)s”.") % {"name": d["username"]},
            details={"field": "username"},
        )
    role = Role.objects.get(code=d["role"])
    unit = OrgUnit.objects.get(code=d["org_unit"])
    common = {"actor": actor, "user": target, "role": role, "org_unit": unit}
    common["doc_types"] = d["doc_types"] or None
    if d["valid_until"]:
        until = datetime.combine(d["valid_until"], time.max, timezone.get_current_timezone())
        return grant_create_temporary(**common, valid_until=until, reason=d["reason"])
    return grant_create(**common, reason=d["reason"])


# --- the permission sets of roles ----------------------------------------------------------


@_guarded(Perm.ACCESS_MANAGE)
def config_roles(request: HttpRequest) -> HttpResponse:
    """Each role with its permissions ticked; saving one role changes its own set (the
    service refuses a role the user holds and combinations that conflict)."""
    user = _user(request)
    form = RolePermissionsForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        chosen = Role.objects.filter(code=d["role"]).first()
        if chosen is None:
            form.add_error(None, gettext("No such role."))
        elif _try(
            form,
            lambda: role_permissions_set(
                actor=user, role=chosen, permissions=d["perm"], reason=d["reason"]
            ),
        ):
            return _done(request, gettext("Permissions of the role saved."), "web:config_roles")
    roles = []
    for role in Role.objects.prefetch_related("includes").order_by("code"):
        own = set(role.permissions)
        inherited = role.all_permissions() - own
        roles.append(
            {
                "role": role,
                "perms": [
                    {
                        "code": code,
                        "label": label,
                        "own": code in own,
                        "inherited": code in inherited,
                    }
                    for code, label in Perm.choices
                ],
                "includes": [r.code for r in role.includes.all()],
                "posted": form.is_bound and form.data.get("role") == role.code,
            }
        )
    return _page(
        request,
        "web/config/roles.html",
        {"form": form, "roles": roles},
        refused=bool(form.errors),
    )


# --- webhook endpoints ---------------------------------------------------------------------


@_guarded(Perm.ACCESS_MANAGE)
def config_webhooks(request: HttpRequest) -> HttpResponse:
    """Webhook endpoints: all for a manager of every company, else those of the user's
    companies (a group endpoint receives every company's events)."""
    user = _user(request)
    op = request.POST.get("op", "")
    group, managed = companies_managed(user, str(Perm.ACCESS_MANAGE))
    form = WebhookForm(
        request.POST if op == "create" else None,
        initial={"company": "" if group else (managed[0].code if managed else "")},
    )
    form.set_companies(group=group, companies=managed)
    off = ReasonTextForm(request.POST if op == "deactivate" else None)
    if op == "create" and form.is_valid():
        d = form.cleaned_data
        company = next((c for c in managed if c.code == d["company"]), None)
        if _try(
            form,
            lambda: webhook_endpoint_create(
                actor=user,
                name=d["name"],
                url=d["url"],
                events=form.event_list(),
                company=company,
            ),
        ):
            return _done(request, gettext("Webhook endpoint added."), "web:config_webhooks")
    elif op == "deactivate" and off.is_valid():
        endpoint_id = _int(request.POST.get("endpoint", ""))
        if _try(off, lambda: webhook_endpoint_deactivate(actor=user, endpoint_id=endpoint_id)):
            return _done(request, gettext("Webhook endpoint switched off."), "web:config_webhooks")
    return _page(
        request,
        "web/config/webhooks.html",
        {"form": form, "off": off, "endpoints": webhook_endpoint_list(actor=user)},
        refused=bool(form.errors or off.errors),
    )


# --- companies and exchange rates ---------------------------------------------------------


@_guarded(Perm.ACCESS_MANAGE)
def config_companies(request: HttpRequest) -> HttpResponse:
    """Companies (公司) with their base currency and calendar; a new one through
    `company_create` (access.manage over the whole installation, audited)."""
    user = _user(request)
    form = CompanyForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        if _try(
            form,
            lambda: company_create(
                actor=user,
                code=d["code"].strip(),
                name=d["name"].strip(),
                currency=d["currency"].strip().upper(),
                time_zone=d["time_zone"].strip(),
                fiscal_year_start_month=d["fiscal_year_start_month"],
            ),
        ):
            return _done(request, gettext("Company added."), "web:config_companies")
    return _page(
        request,
        "web/config/companies.html",
        {"form": form, "companies": companies()},
        refused=bool(form.errors),
    )


@_guarded(Perm.POLICY_MANAGE)
def config_rates(request: HttpRequest) -> HttpResponse:
    """The rate tables (汇率表) of the group view and of documents sent without a rate; a rate
    set through `exchange_rate_set` (policy.manage over the whole installation, audited)."""
    user = _user(request)
    form = RateForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        if _try(
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
            return _done(request, gettext("Exchange rate saved."), "web:config_rates")
    rates = ExchangeRate.objects.order_by("table", "currency", "to_currency", "-day")[:500]
    return _page(
        request,
        "web/config/rates.html",
        {"form": form, "rates": rates, "book_table": book_rate_table()},
        refused=bool(form.errors),
    )


urlpatterns = [
    path("", config_home, name="config"),
    path("policies/", config_policies, name="config_policies"),
    path("reasons/", config_reasons, name="config_reasons"),
    path("alerts/", config_alerts, name="config_alerts"),
    path("periods/", config_periods, name="config_periods"),
    path("routes/", config_routes, name="config_routes"),
    path("routes/new/", config_route, name="config_route_new"),
    path("routes/<int:pk>/", config_route, name="config_route"),
    path("grants/", config_grants, name="config_grants"),
    path("roles/", config_roles, name="config_roles"),
    path("webhooks/", config_webhooks, name="config_webhooks"),
    path("companies/", config_companies, name="config_companies"),
    path("rates/", config_rates, name="config_rates"),
]
