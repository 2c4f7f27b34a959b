"""Writes behind the API: tokens (create, revoke, authenticate), idempotency records, and the
ERP-facing helpers that resolve master data before calling the domain services; webhook
endpoints and close policies, which have no service of their own elsewhere."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api.models import ApiToken, IdempotencyRecord
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_record, to_json_value
from closeout.closing.models import ClosePolicy, Severity
from closeout.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied, StaleVersion
from closeout.core.inputs import (
    MAX_DAYS,
    Column,
    check_fits,
    check_length,
    check_range,
    max_length_of,
)
from closeout.core.models import OrgUnit, Partner, PartnerKind
from closeout.core.services import item_get_or_create
from closeout.documents.models import Document
from closeout.documents.services import LineInput, document_upsert
from closeout.documents.types import spec_for
from closeout.notifications.models import WebhookEndpoint

TOKEN_PREFIX = "co_"  # noqa: S105 (a public prefix, not a secret)


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


PreconditionFailed = StaleVersion


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    raw: str  # shown once, never stored


# --- tokens ----------------------------------------------------------------------------------


def api_token_create(
    *,
    actor: AbstractBaseUser | None,
    user: AbstractBaseUser,
    name: str = "",
    days: int | None = None,
) -> NewToken:
    """A new token for `user`. Users make their own; making one for someone else needs
    `access.manage`. `actor` None is the server's own command line (an operator's shell)."""
    if actor is not None and actor.pk != user.pk:
        require(actor, Perm.ACCESS_MANAGE, what="API tokens of other users")
    if days is not None and not 0 < days <= MAX_DAYS:
        raise InvalidInput(
            f"--days must be a positive number up to {MAX_DAYS}, got {days}",
            details={"field": "days"},
        )
    if not user.is_active:
        raise InvalidInput(f"user {user.get_username()} is inactive")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = timezone.now() + timedelta(days=days) if days is not None else None
    with transaction.atomic():
        token = ApiToken.objects.create(
            user_id=user.pk,
            name=name,
            prefix=raw[:10],
            key_hash=token_hash(raw),
            created_by_id=actor.pk if actor is not None else None,
            expires_at=expires,
        )
        audit_record(
            actor=actor,
            action=AuditAction.TOKEN_CREATED,
            object_type="api_token",
            object_id=token.pk,
            object_repr=f"API token {token.prefix}… of {user.get_username()}",
            data={"user": user.get_username(), "name": name, "expires_at": expires},
        )
    return NewToken(token, raw)


def api_token_revoke(*, actor: AbstractBaseUser | None, token_id: int) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update(no_key=True).filter(pk=token_id).first()
        if token is None:
            raise NotFound(f"no API token #{token_id}")
        if actor is not None and actor.pk != token.user_id:
            require(actor, Perm.ACCESS_MANAGE, what="API tokens of other users")
        if token.revoked_at is not None:
            raise InvalidInput(f"API token #{token_id} was already revoked")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action=AuditAction.TOKEN_REVOKED,
            object_type="api_token",
            object_id=token.pk,
            object_repr=f"API token {token.prefix}…",
            data={"user_id": token.user_id},
        )
    return token


# last_used_at is written at most once a minute per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The live token for a bearer string, or None (unknown, revoked, expired, user inactive)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(raw)).first()
    now = timezone.now()
    if (
        token is None
        or token.revoked_at is not None
        or (token.expires_at is not None and token.expires_at <= now)
        or not token.user.is_active
    ):
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- idempotency -----------------------------------------------------------------------------

# A first request that never finished (its process died) frees its key after this long.
IDEMPOTENCY_STALE = timedelta(minutes=10)


class IdempotencyMismatch(DomainError):
    code = "idempotency_key_reused"
    http_status = 422


class IdempotencyInProgress(DomainError):
    code = "idempotency_in_progress"
    http_status = 409


def idempotency_begin(
    *, user_id: int, key: str, method: str, path: str, body: bytes
) -> IdempotencyRecord:
    """Claim `key` for this request, or return the finished record of the first one (status
    > 0). Raises when the key was used for another request or its first use is still running."""
    if not key.strip() or len(key) > 200:
        raise InvalidInput(
            "Idempotency-Key must be 1 to 200 characters", details={"field": "Idempotency-Key"}
        )
    digest = hashlib.sha256(body).hexdigest()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                user_id=user_id, key=key, method=method, path=path, body_hash=digest
            )
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(user_id=user_id, key=key)
    if record.method != method or record.path != path or record.body_hash != digest:
        raise IdempotencyMismatch(
            f"Idempotency-Key '{key}' was already used for a different request "
            f"({record.method} {record.path}); use a new key for a new request",
            details={"field": "Idempotency-Key", "first_path": record.path},
        )
    if record.status == 0:
        if timezone.now() - record.created_at > IDEMPOTENCY_STALE:
            # The first attempt died without an answer: this retry takes the key over.
            IdempotencyRecord.objects.filter(pk=record.pk, status=0).update(
                created_at=timezone.now()
            )
            return record
        raise IdempotencyInProgress(
            f"a request with Idempotency-Key '{key}' is still being processed; retry later",
            details={"field": "Idempotency-Key"},
        )
    return record


def idempotency_finish(
    *, record: IdempotencyRecord, status: int, content_type: str, body: bytes
) -> None:
    if status >= 500:
        # Nothing was promised: let a retry run again.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=status, content_type=content_type, body=body
    )


# --- ERP synchronisation -----------------------------------------------------------------------


def partner_sync(
    *, actor: AbstractBaseUser, code: str, name: str, kind: str, active: bool = True
) -> tuple[Partner, bool]:
    """Create or update a supplier/customer from the ERP (by code)."""
    require(actor, Perm.DOCUMENT_SYNC, what=f"partner {code}")
    if kind not in PartnerKind.values:
        raise InvalidInput(
            f"unknown partner kind '{kind}'; use one of: {', '.join(PartnerKind.values)}",
            details={"field": "kind"},
        )
    if not code.strip() or not name.strip():
        raise InvalidInput("partner code and name must not be empty", details={"field": "name"})
    for field, value in (("code", code), ("name", name)):
        check_length(value, field=field, max_length=max_length_of(Partner, field))
    with transaction.atomic():
        partner, created = Partner.objects.select_for_update(no_key=True).get_or_create(
            code=code, defaults={"name": name, "kind": kind, "active": active}
        )
        if not created and (partner.name, partner.kind, partner.active) != (name, kind, active):
            partner.name, partner.kind, partner.active = name, kind, active
            partner.save(update_fields=["name", "kind", "active"])
    return partner, created


@dataclass(frozen=True)
class LineData:
    line_no: int
    planned_qty: Decimal
    unit_price: Decimal
    item: str = ""
    item_name: str = ""
    description: str = ""
    unit: str = "EA"
    planned_amount: Decimal | None = None


def document_sync(
    *,
    actor: AbstractBaseUser,
    doc_type: str,
    number: str,
    org_unit: str,
    document_date: date,
    lines: list[LineData],
    partner: str = "",
    expected_date: date | None = None,
    currency: str = "CNY",
    exchange_rate: Decimal = Decimal(1),
    source_system: str = "closeout",
    external_id: str = "",
    if_match: int | None = None,
) -> tuple[Document, bool]:
    """Upsert a document pushed by an ERP, by codes: resolves the organisation unit, partner
    and items, then calls `document_upsert` (which checks permission and the lock). Returns
    (document, created)."""
    spec_for(doc_type)
    unit = OrgUnit.objects.filter(code=org_unit).first()
    if unit is None:
        raise InvalidInput(f"unknown organisation unit '{org_unit}'", details={"field": "org_unit"})
    require(actor, Perm.DOCUMENT_SYNC, org_unit=unit, doc_type=doc_type, what=number)
    partner_obj: Partner | None = None
    if partner:
        partner_obj = Partner.objects.filter(code=partner).first()
        if partner_obj is None:
            raise InvalidInput(
                f"unknown partner '{partner}': push it first (PUT /api/partners/{partner})",
                details={"field": "partner"},
            )
    existing = Document.objects.filter(doc_type=doc_type, number=number).exists()
    if external_id:
        clash = (
            Document.objects.filter(source_system=source_system, external_id=external_id)
            .exclude(doc_type=doc_type, number=number)
            .first()
        )
        if clash is not None:
            raise Conflict(
                f"external id '{external_id}' from {source_system} already belongs to "
                f"{clash.label}",
                details={"field": "external_id", "document": clash.label},
            )
    inputs = [
        LineInput(
            line_no=line.line_no,
            planned_qty=line.planned_qty,
            unit_price=line.unit_price,
            item=item_get_or_create(
                code=line.item, name=line.item_name or line.item, unit=line.unit
            )
            if line.item
            else None,
            description=line.description,
            unit=line.unit,
            planned_amount=line.planned_amount,
        )
        for line in lines
    ]
    try:
        document = document_upsert(
            actor=actor,
            doc_type=doc_type,
            number=number,
            org_unit=unit,
            document_date=document_date,
            lines=inputs,
            partner=partner_obj,
            expected_date=expected_date,
            currency=currency,
            exchange_rate=exchange_rate,
            source_system=source_system,
            external_id=external_id,
            expected_version=if_match,
        )
    except IntegrityError as exc:
        # Another request created the same document at the same moment.
        raise Conflict(
            f"{doc_type} {number} was written by another request at the same time; retry",
            details={"number": number},
        ) from exc
    return document, not existing


# --- configuration ---------------------------------------------------------------------------

_POLICY_FIELDS = (
    "under_qty_pct",
    "over_qty_pct",
    "match_qty_pct",
    "amount_tolerance_abs",
    "amount_tolerance_pct",
    "write_off_amount",
    "variance_value_limit",
    "budget_tolerance_pct",
    "grace_days",
    "auto_close_enabled",
    "direct_close_needs_approval",
    "rule_settings",
    "archive_after_days",
)


def _check_rule_settings(doc_type: str, settings: Any) -> None:
    if not isinstance(settings, dict):
        raise InvalidInput("rule_settings must be an object", details={"field": "rule_settings"})
    codes = {rule.code for rule in spec_for(doc_type).rules}
    for code, value in settings.items():
        where = f"rule_settings.{code}"
        if code not in codes:
            raise InvalidInput(
                f"{where}: a {doc_type} has no rule '{code}'; rules: {', '.join(sorted(codes))}",
                details={"field": where},
            )
        if not isinstance(value, dict) or set(value) - {"enabled", "severity"}:
            raise InvalidInput(
                f'{where}: expected {{"enabled": true|false, "severity": "..."}}',
                details={"field": where},
            )
        if "enabled" in value and not isinstance(value["enabled"], bool):
            raise InvalidInput(f"{where}.enabled must be true or false", details={"field": where})
        if "severity" in value and value["severity"] not in Severity.values:
            raise InvalidInput(
                f"{where}.severity must be one of {', '.join(Severity.values)}",
                details={"field": where},
            )


def policy_update(
    *, actor: AbstractBaseUser, doc_type: str, org_unit: str = "", changes: dict[str, Any]
) -> ClosePolicy:
    """Change a close policy (the default of a type, or one unit's); recorded with before and
    after values."""
    spec_for(doc_type)
    unit = None
    if org_unit:
        unit = OrgUnit.objects.filter(code=org_unit).first()
        if unit is None:
            raise InvalidInput(
                f"unknown organisation unit '{org_unit}'", details={"field": "org_unit"}
            )
    require(actor, Perm.POLICY_MANAGE, org_unit=unit, doc_type=doc_type, what="close policies")
    unknown = sorted(set(changes) - set(_POLICY_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown policy field '{unknown[0]}'", details={"field": unknown[0]})
    if "rule_settings" in changes:
        _check_rule_settings(doc_type, changes["rule_settings"])
    for name, value in changes.items():
        if isinstance(value, Decimal) and value < 0:
            raise InvalidInput(f"{name} must not be negative", details={"field": name})
        if isinstance(value, Decimal):
            check_fits(value, Column.of(ClosePolicy._meta.get_field(name)), field=name)  # type: ignore[arg-type]
        elif isinstance(value, int) and not isinstance(value, bool):
            check_range(value, field=name, minimum=0, maximum=MAX_DAYS)
    with transaction.atomic():
        policy = (
            ClosePolicy.objects.select_for_update(no_key=True)
            .filter(doc_type=doc_type, org_unit=unit)
            .first()
        )
        if policy is None:
            if unit is None:
                raise NotFound(f"no default close policy for {doc_type}")
            policy = ClosePolicy(doc_type=doc_type, org_unit=unit)
        before = {name: getattr(policy, name) for name in changes}
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.save()
        audit_record(
            actor=actor,
            action=AuditAction.POLICY_CHANGED,
            object_type="close_policy",
            object_id=policy.pk,
            object_repr=str(policy),
            data={
                name: {"before": to_json_value(before[name]), "after": to_json_value(value)}
                for name, value in changes.items()
            },
        )
    return policy


def webhook_endpoint_create(
    *, actor: AbstractBaseUser, name: str, url: str, events: list[str], secret: str = ""
) -> WebhookEndpoint:
    require(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    if not name.strip():
        raise InvalidInput("webhook name is empty", details={"field": "name"})
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError as exc:
        raise InvalidInput(f"'{url}' is not an http(s) URL", details={"field": "url"}) from exc
    if any(not isinstance(e, str) or not e.strip() for e in events):
        raise InvalidInput("webhook events must be non-empty names", details={"field": "events"})
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(name=name).exists():
            raise Conflict(f"a webhook endpoint named '{name}' exists", details={"field": "name"})
        endpoint = WebhookEndpoint.objects.create(
            name=name, url=url, events=events, secret=secret or secrets.token_urlsafe(32)
        )
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_CHANGED,
            object_type="webhook_endpoint",
            object_id=endpoint.pk,
            object_repr=name,
            data={"url": url, "events": events, "active": True},
            reason="webhook endpoint created",
        )
    return endpoint


def webhook_endpoint_deactivate(*, actor: AbstractBaseUser, endpoint_id: int) -> WebhookEndpoint:
    require(actor, Perm.ACCESS_MANAGE, what="webhook endpoints")
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint_id).first()
        )
        if endpoint is None:
            raise NotFound(f"no webhook endpoint #{endpoint_id}")
        if not endpoint.active:
            raise InvalidInput(f"webhook endpoint #{endpoint_id} is already inactive")
        endpoint.active = False
        endpoint.save(update_fields=["active"])
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_CHANGED,
            object_type="webhook_endpoint",
            object_id=endpoint.pk,
            object_repr=endpoint.name,
            data={"active": {"before": True, "after": False}},
            reason="webhook endpoint deactivated",
        )
    return endpoint


def user_by_name(username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"no user '{username}'")
    return user


__all__ = [
    "Conflict",
    "PermissionDenied",
    "PreconditionFailed",
    "api_token_authenticate",
    "api_token_create",
    "api_token_revoke",
    "document_sync",
    "idempotency_begin",
    "idempotency_finish",
    "partner_sync",
    "policy_update",
    "webhook_endpoint_create",
    "webhook_endpoint_deactivate",
]
