"""Configuration through the API: partners (ERP master data), close policies, webhook
endpoints (admins only) and the caller's own API tokens."""

from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_noop
from ninja import Router, Status

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api import present
from closeout.api.models import ApiToken
from closeout.api.routers._common import ERRORS, caller
from closeout.api.schemas import (
    PartnerIn,
    PartnerOut,
    PolicyIn,
    PolicyOut,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    WebhookCreatedOut,
    WebhookDeliveryPage,
    WebhookIn,
    WebhookOut,
)
from closeout.api.services import api_token_create, api_token_revoke
from closeout.closing.policies import policy_for, policy_update
from closeout.core.companies import company_get
from closeout.core.errors import InvalidInput
from closeout.core.lookup import org_unit_by_code
from closeout.core.paging import keyset_page
from closeout.documents.services import partner_sync
from closeout.documents.types import spec_for
from closeout.notifications.selectors import webhook_deliveries_visible, webhook_endpoint_list
from closeout.notifications.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_deactivate,
)

partners = Router(tags=["partners"])
policies = Router(tags=["policies"])
webhooks = Router(tags=["webhooks"])
tokens = Router(tags=["tokens"])

DELIVERIES_MAX_LIMIT = 500


@partners.put(
    "/{code}",
    response={200: PartnerOut, 201: PartnerOut, **ERRORS},
    summary="Create or update a supplier or customer",
)
def partner_put(request: HttpRequest, code: str, payload: PartnerIn) -> Any:
    partner, created = partner_sync(
        actor=caller(request),
        code=code,
        name=payload.name,
        kind=payload.kind,
        active=payload.active,
    )
    out = PartnerOut(code=partner.code, name=partner.name, kind=partner.kind, active=partner.active)
    return Status(201 if created else 200, out)


@policies.get("/{doc_type}", response={200: PolicyOut, **ERRORS}, summary="Close policy")
def policy_get(request: HttpRequest, doc_type: str, org_unit: str = "") -> Any:
    spec_for(doc_type)
    unit = org_unit_by_code(org_unit) if org_unit else None
    require(caller(request), Perm.DOCUMENT_VIEW, org_unit=unit, doc_type=doc_type, what="policies")
    return present.policy_out(policy_for(doc_type, unit))


@policies.patch("/{doc_type}", response={200: PolicyOut, **ERRORS}, summary="Change a close policy")
def policy_patch(request: HttpRequest, doc_type: str, payload: PolicyIn) -> Any:
    changes: dict[str, Any] = {}
    for name, value in payload.model_dump(exclude_unset=True).items():
        # Only the retention takes an explicit null ("never archive").
        if name == "org_unit" or (value is None and name != "archive_after_days"):
            continue
        if isinstance(value, str):
            value = Decimal(value)
        changes[name] = value
    policy = policy_update(
        actor=caller(request), doc_type=doc_type, org_unit=payload.org_unit, changes=changes
    )
    return present.policy_out(policy)


@webhooks.get("", response={200: list[WebhookOut], **ERRORS}, summary="Webhook endpoints")
def webhooks_list(request: HttpRequest) -> Any:
    # A group endpoint receives every company's events: only managers of every company see
    # those; a manager of one company sees that company's endpoints.
    return [present.webhook_out(e) for e in webhook_endpoint_list(actor=caller(request))]


@webhooks.post(
    "",
    response={201: WebhookCreatedOut, **ERRORS},
    summary="Add a webhook endpoint (the secret is shown once)",
)
def webhooks_create(request: HttpRequest, payload: WebhookIn) -> Any:
    endpoint = webhook_endpoint_create(
        actor=caller(request),
        name=payload.name,
        url=payload.url,
        events=payload.events,
        secret=payload.secret,
        company=company_get(payload.company) if payload.company else None,
    )
    return Status(
        201, WebhookCreatedOut(**present.webhook_out(endpoint).model_dump(), secret=endpoint.secret)
    )


@webhooks.post(
    "/{endpoint_id}/deactivate", response={200: WebhookOut, **ERRORS}, summary="Deactivate"
)
def webhooks_deactivate(request: HttpRequest, endpoint_id: int) -> Any:
    endpoint = webhook_endpoint_deactivate(actor=caller(request), endpoint_id=endpoint_id)
    return present.webhook_out(endpoint)


@webhooks.get(
    "/{endpoint_id}/deliveries",
    response={200: WebhookDeliveryPage, **ERRORS},
    summary="The delivery log of one endpoint, newest first (another company's endpoint: 404)",
)
def webhooks_deliveries(
    request: HttpRequest, endpoint_id: int, cursor: str = "", limit: int = 50
) -> Any:
    if not 1 <= limit <= DELIVERIES_MAX_LIMIT:
        raise InvalidInput(
            gettext_noop("limit must be 1 to %(max)s"),
            details={"field": "limit"},
            params={"max": DELIVERIES_MAX_LIMIT},
        )
    rows = webhook_deliveries_visible(actor=caller(request), endpoint_id=endpoint_id)
    page = keyset_page(rows, sort="-pk", size=limit, after=cursor)
    return {
        "items": [present.webhook_delivery_out(d) for d in page.rows],
        "next_cursor": page.next_cursor or None,
    }


@tokens.get("", response={200: list[TokenOut], **ERRORS}, summary="My API tokens")
def tokens_list(request: HttpRequest) -> Any:
    mine = ApiToken.objects.filter(user_id=caller(request).pk).order_by("pk")
    return [present.token_out(t) for t in mine]


@tokens.post("", response={201: TokenCreatedOut, **ERRORS}, summary="Create a token (shown once)")
def tokens_create(request: HttpRequest, payload: TokenIn) -> Any:
    actor = caller(request)
    new = api_token_create(actor=actor, user=actor, name=payload.name, days=payload.days)
    return Status(201, TokenCreatedOut(**present.token_out(new.token).model_dump(), token=new.raw))


@tokens.post("/{token_id}/revoke", response={200: TokenOut, **ERRORS}, summary="Revoke a token")
def tokens_revoke(request: HttpRequest, token_id: int) -> Any:
    return present.token_out(api_token_revoke(actor=caller(request), token_id=token_id))
