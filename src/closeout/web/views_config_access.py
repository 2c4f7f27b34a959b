"""Grants, the permission sets of roles and companies in the configuration pages (设置).
Every change goes through its service (permission, separation of duties, audit)."""

from datetime import datetime, time
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext

from closeout.access.companies import company_create
from closeout.access.models import Grant, Role
from closeout.access.permissions import Perm
from closeout.access.roles import role_permissions_set
from closeout.access.services import (
    grant_create,
    grant_create_temporary,
    grant_revoke,
)
from closeout.core.companies import companies
from closeout.core.errors import NotFound
from closeout.core.lookup import org_unit_by_code
from closeout.web.config_pages import config_done, config_page, config_try, config_view, int_param
from closeout.web.forms_config import (
    CompanyForm,
    GrantForm,
    ReasonTextForm,
    RolePermissionsForm,
)
from closeout.web.views import _user

# --- roles and grants ----------------------------------------------------------------------


@config_view(Perm.ACCESS_MANAGE)
def config_grants(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    op = request.POST.get("op", "")
    form = GrantForm(request.POST if op == "grant" else None)
    revoke = ReasonTextForm(request.POST if op == "revoke" else None)
    if op == "grant" and form.is_valid():
        if config_try(form, lambda: _grant(user, form.cleaned_data)):
            return config_done(request, gettext("Role granted."), "web:config_grants")
    elif op == "revoke" and revoke.is_valid():
        grant = Grant.objects.filter(pk=int_param(request.POST.get("grant", ""))).first()
        if grant is None:
            revoke.add_error(None, gettext("No such grant."))
        elif config_try(
            revoke,
            lambda: grant_revoke(actor=user, grant=grant, reason=revoke.cleaned_data["reason"]),
        ):
            return config_done(request, gettext("Grant revoked."), "web:config_grants")
    grants = (
        Grant.objects.active()
        .select_related("user", "role", "org_unit", "granted_by")
        .order_by("user__username", "pk")
    )
    return config_page(
        request,
        "web/config/grants.html",
        {"form": form, "revoke": revoke, "grants": grants, "roles": Role.objects.order_by("code")},
        refused=bool(form.errors or revoke.errors),
    )


def _grant(actor: Any, d: dict[str, Any]) -> Grant:
    target = get_user_model().objects.filter(username=d["username"].strip()).first()
    if target is None:
        raise NotFound(
            gettext("No user named “%(name)s”.") % {"name": d["username"]},
            details={"field": "username"},
        )
    role = Role.objects.get(code=d["role"])
    unit = org_unit_by_code(d["org_unit"])
    common = {"actor": actor, "user": target, "role": role, "org_unit": unit}
    common["doc_types"] = d["doc_types"] or None
    if d["valid_until"]:
        until = datetime.combine(d["valid_until"], time.max, timezone.get_current_timezone())
        return grant_create_temporary(**common, valid_until=until, reason=d["reason"])
    return grant_create(**common, reason=d["reason"])


# --- the permission sets of roles ----------------------------------------------------------


@config_view(Perm.ACCESS_MANAGE)
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
        elif config_try(
            form,
            lambda: role_permissions_set(
                actor=user, role=chosen, permissions=d["perm"], reason=d["reason"]
            ),
        ):
            return config_done(
                request, gettext("Permissions of the role saved."), "web:config_roles"
            )
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
    return config_page(
        request,
        "web/config/roles.html",
        {"form": form, "roles": roles},
        refused=bool(form.errors),
    )


# --- companies ----------------------------------------------------------------------------


@config_view(Perm.ACCESS_MANAGE)
def config_companies(request: HttpRequest) -> HttpResponse:
    """Companies (公司) with their base currency and calendar; a new one through
    `company_create` (access.manage over the whole installation, audited)."""
    user = _user(request)
    form = CompanyForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        if config_try(
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
            return config_done(request, gettext("Company added."), "web:config_companies")
    return config_page(
        request,
        "web/config/companies.html",
        {"form": form, "companies": companies()},
        refused=bool(form.errors),
    )
