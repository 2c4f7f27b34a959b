"""Writes of webhook endpoints: add one (for a company or the whole group) and switch one off,
each audited. Who may see which endpoint is `notifications.selectors.webhook_endpoints_visible`."""

import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, require_company_wide, require_unit_wide
from closeout.audit.changes import field_changes, field_values
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import Conflict, InvalidInput, NotFound
from closeout.core.models import Company
from closeout.notifications.models import WebhookEndpoint
from closeout.notifications.selectors import webhook_endpoints_visible
from closeout.notifications.webhook_urls import webhook_url_check


def _webhook_scope_check(actor: AbstractBaseUser, company: Company | None) -> None:
    """An endpoint of the group receives every company's events: its writer needs
    access.manage over every company; one of a company, over that company."""
    if company is None:
        require_company_wide(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    else:
        require_unit_wide(actor, Perm.ACCESS_MANAGE, company.unit, what="webhook endpoints")


def webhook_endpoint_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    url: str,
    events: list[str],
    secret: str = "",
    company: Company | None = None,
) -> WebhookEndpoint:
    _webhook_scope_check(actor, company)
    if not name.strip():
        raise InvalidInput(
            gettext_noop("webhook name is empty"), details={"field": "name"}, params={}
        )
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError as exc:
        raise InvalidInput(
            gettext_noop("'%(url)s' is not an http(s) URL"),
            details={"field": "url"},
            params={"url": url},
        ) from exc
    webhook_url_check(url)
    if any(not isinstance(e, str) or not e.strip() for e in events):
        raise InvalidInput(
            gettext_noop("webhook events must be non-empty names"),
            details={"field": "events"},
            params={},
        )
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(name=name).exists():
            raise Conflict(
                gettext_noop("a webhook endpoint named '%(name)s' exists"),
                details={"field": "name"},
                params={"name": name},
            )
        endpoint = WebhookEndpoint.objects.create(
            name=name,
            url=url,
            events=events,
            secret=secret or secrets.token_urlsafe(32),
            company=company,
        )
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_CHANGED,
            object_type=AuditObject.WEBHOOK_ENDPOINT,
            object_id=endpoint.pk,
            object_repr=name,
            data=field_changes(None, field_values(endpoint, ("url", "events", "active")))
            | ({"company": company.code} if company is not None else {}),
            reason="webhook endpoint created",
        )
    return endpoint


def webhook_endpoint_deactivate(*, actor: AbstractBaseUser, endpoint_id: int) -> WebhookEndpoint:
    require(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    with transaction.atomic():
        endpoint = (
            # Only the endpoint's row: its company is a nullable join, which PostgreSQL
            # cannot lock.
            WebhookEndpoint.objects.select_for_update(no_key=True, of=("self",))
            .select_related("company__unit")
            .filter(pk=endpoint_id)
            .first()
        )
        if endpoint is not None and not (
            webhook_endpoints_visible(actor=actor).filter(pk=endpoint.pk).exists()
        ):
            endpoint = None  # another company's endpoint: as if it did not exist
        if endpoint is None:
            raise NotFound(
                gettext_noop("no webhook endpoint #%(endpoint_id)s"),
                params={"endpoint_id": endpoint_id},
            )
        if not endpoint.active:
            raise InvalidInput(
                gettext_noop("webhook endpoint #%(endpoint_id)s is already inactive"),
                params={"endpoint_id": endpoint_id},
            )
        _webhook_scope_check(actor, endpoint.company)
        before = field_values(endpoint, ["active"])
        endpoint.active = False
        endpoint.save(update_fields=["active"])
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_CHANGED,
            object_type=AuditObject.WEBHOOK_ENDPOINT,
            object_id=endpoint.pk,
            object_repr=endpoint.name,
            data=field_changes(before, field_values(endpoint, ["active"])),
            reason="webhook endpoint deactivated",
        )
    return endpoint
