"""Webhook endpoints and their delivery log in the configuration pages (设置), scoped to the
companies the user manages."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext

from closeout.access.permissions import Perm
from closeout.access.selectors import companies_managed
from closeout.core.errors import NotFound
from closeout.core.paging import keyset_page
from closeout.notifications.selectors import webhook_deliveries_visible, webhook_endpoint_list
from closeout.notifications.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_deactivate,
)
from closeout.web.config_pages import config_done, config_page, config_try, config_view, int_param
from closeout.web.forms_config import (
    ReasonTextForm,
    WebhookForm,
)
from closeout.web.views import _refused, _user

DELIVERIES_PER_PAGE = 20

# --- webhook endpoints ---------------------------------------------------------------------


@config_view(Perm.ACCESS_MANAGE)
def config_webhooks(request: HttpRequest) -> HttpResponse:
    """Webhook endpoints: all for a manager of every company, else those of the user's
    companies (a group endpoint receives every company's events); below them the recent
    deliveries of those endpoints (or of the one chosen by ?endpoint=), newest first."""
    user = _user(request)
    try:
        deliveries = _deliveries(request, user)
    except NotFound as exc:  # another company's endpoint, as if it did not exist
        return _refused(request, exc)
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
        company = form.company_chosen()
        if config_try(
            form,
            lambda: webhook_endpoint_create(
                actor=user,
                name=d["name"],
                url=d["url"],
                events=form.event_list(),
                company=company,
            ),
        ):
            return config_done(request, gettext("Webhook endpoint added."), "web:config_webhooks")
    elif op == "deactivate" and off.is_valid():
        endpoint_id = int_param(request.POST.get("endpoint", ""))
        if config_try(
            off, lambda: webhook_endpoint_deactivate(actor=user, endpoint_id=endpoint_id)
        ):
            return config_done(
                request, gettext("Webhook endpoint switched off."), "web:config_webhooks"
            )
    return config_page(
        request,
        "web/config/webhooks.html",
        {"form": form, "off": off, "endpoints": webhook_endpoint_list(actor=user)} | deliveries,
        refused=bool(form.errors or off.errors),
    )


def _deliveries(request: HttpRequest, user: AbstractBaseUser) -> dict[str, Any]:
    """One page of the delivery log, by keyset in both directions."""
    endpoint_id = int_param(request.GET.get("endpoint", ""))
    rows = webhook_deliveries_visible(actor=user, endpoint_id=endpoint_id or None)
    page = keyset_page(
        rows,
        sort="-pk",
        size=DELIVERIES_PER_PAGE,
        after=request.GET.get("after", "")[:60],
        before=request.GET.get("before", "")[:60],
    )
    return {
        "deliveries": page,
        "delivery_endpoint": endpoint_id,
        "delivery_params": f"endpoint={endpoint_id}" if endpoint_id else "",
        "delivery_paged": bool(request.GET.get("after") or request.GET.get("before")),
    }
