"""Configuration in the workbench (设置): the home page with the sections the user may open,
and the addresses of every section. The sections live in views_config_policies (policies,
reason codes, alert rules, exchange rates), views_config_approvals (routes, periods),
views_config_access (grants, roles, companies) and views_config_webhooks; their shared parts
in config_pages. Thin pages: every change goes through its service."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from closeout.access.permissions import Perm
from closeout.access.services import (
    require,
    user_has_perm,
)
from closeout.web import (
    views_config_access,
    views_config_approvals,
    views_config_policies,
    views_config_webhooks,
)
from closeout.web.config_pages import config_page
from closeout.web.views import _user

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


@login_required
@require_GET
def config_home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    sections = [name for name, perm in SECTIONS if user_has_perm(user, perm)]
    if not sections:
        require(user, Perm.POLICY_MANAGE, what=gettext("configuration"))
    return config_page(request, "web/config/home.html", {"sections": sections})


urlpatterns = [
    path("", config_home, name="config"),
    path("policies/", views_config_policies.config_policies, name="config_policies"),
    path("reasons/", views_config_policies.config_reasons, name="config_reasons"),
    path("alerts/", views_config_policies.config_alerts, name="config_alerts"),
    path("periods/", views_config_approvals.config_periods, name="config_periods"),
    path("routes/", views_config_approvals.config_routes, name="config_routes"),
    path("routes/new/", views_config_approvals.config_route, name="config_route_new"),
    path("routes/<int:pk>/", views_config_approvals.config_route, name="config_route"),
    path("grants/", views_config_access.config_grants, name="config_grants"),
    path("roles/", views_config_access.config_roles, name="config_roles"),
    path("webhooks/", views_config_webhooks.config_webhooks, name="config_webhooks"),
    path("companies/", views_config_access.config_companies, name="config_companies"),
    path("rates/", views_config_policies.config_rates, name="config_rates"),
]
