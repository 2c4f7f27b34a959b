"""Approval routes and accounting periods in the configuration pages (设置). Every change
goes through its service."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext

from closeout.access.permissions import Perm
from closeout.approvals.models import AccountingPeriod, ApprovalRoute
from closeout.approvals.periods import period_create, period_set_closed
from closeout.approvals.routes import route_save
from closeout.core.errors import NotFound
from closeout.web.config_pages import config_done, config_page, config_try, config_view
from closeout.web.forms_config import (
    PeriodForm,
    ReasonTextForm,
    RouteForm,
)
from closeout.web.views import _refused, _user

# --- accounting periods --------------------------------------------------------------------


@config_view(Perm.POLICY_MANAGE)
def config_periods(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    op = request.POST.get("op", "")
    form = PeriodForm(request.POST if op == "create" else None)
    change = ReasonTextForm(request.POST if op in ("close", "open") else None)
    if op == "create" and form.is_valid():
        if config_try(form, lambda: period_create(actor=user, **form.cleaned_data)):
            return config_done(request, gettext("Accounting period added."), "web:config_periods")
    elif op in ("close", "open") and change.is_valid():
        period_id = request.POST.get("period", "")
        if config_try(
            change,
            lambda: period_set_closed(
                actor=user,
                period_id=int(period_id) if period_id.isdigit() and len(period_id) < 18 else 0,
                closed=op == "close",
                reason=change.cleaned_data["reason"],
            ),
        ):
            text = gettext("Period closed.") if op == "close" else gettext("Period opened again.")
            return config_done(request, text, "web:config_periods")
    return config_page(
        request,
        "web/config/periods.html",
        {"form": form, "change": change, "periods": AccountingPeriod.objects.order_by("-start")},
        refused=bool(form.errors or change.errors),
    )


# --- approval routes -----------------------------------------------------------------------


@config_view(Perm.POLICY_MANAGE)
def config_routes(request: HttpRequest) -> HttpResponse:
    routes = ApprovalRoute.objects.select_related("org_unit").prefetch_related("steps__role")
    return config_page(request, "web/config/routes.html", {"routes": routes})


@config_view(Perm.POLICY_MANAGE)
def config_route(request: HttpRequest, pk: int = 0) -> HttpResponse:
    user = _user(request)
    route = ApprovalRoute.objects.filter(pk=pk).first() if pk else None
    if pk and route is None:
        return _refused(request, NotFound(gettext("No such page.")))
    form = RouteForm(request.POST or None, initial=_route_initial(route))
    valid = request.method == "POST" and form.is_valid()
    if valid and config_try(
        form, lambda: route_save(actor=user, data=form.route_input(), route_id=pk or None)
    ):
        return config_done(request, gettext("Approval route saved."), "web:config_routes")
    return config_page(
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
