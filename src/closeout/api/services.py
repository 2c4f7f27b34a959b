"""Writes of the API's own records: tokens (create, revoke, authenticate) and idempotency
records. Domain writes live in their apps (partners and documents in documents.services, close
policies in closing.policies, webhook endpoints in notifications.webhook_endpoints)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.api.models import ApiToken, IdempotencyRecord
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StaleVersion,
)
from closeout.core.inputs import MAX_DAYS

TOKEN_PREFIX = "co_"  # noqa: S105 (a public prefix, not a secret)


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
        # A token acts with all of its user's rights: only a company-wide administrator
        # makes or revokes one for someone else.
        require_company_wide(actor, Perm.ACCESS_MANAGE, what="API tokens of other users")
    if days is not None and not 0 < days <= MAX_DAYS:
        raise InvalidInput(
            gettext_noop("--days must be a positive number up to %(max)s, got %(days)s"),
            details={"field": "days"},
            params={"max": MAX_DAYS, "days": days},
        )
    if not user.is_active:
        raise InvalidInput(
            gettext_noop("user %(user)s is inactive"), params={"user": user.get_username()}
        )
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
            object_type=AuditObject.API_TOKEN,
            object_id=token.pk,
            object_repr=f"API token {token.prefix}… of {user.get_username()}",
            data={"user": user.get_username(), "name": name, "expires_at": expires},
        )
    return NewToken(token, raw)


def api_token_revoke(*, actor: AbstractBaseUser | None, token_id: int) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update(no_key=True).filter(pk=token_id).first()
        if token is None:
            raise NotFound(
                gettext_noop("no API token #%(token_id)s"), params={"token_id": token_id}
            )
        if actor is not None and actor.pk != token.user_id:
            require_company_wide(actor, Perm.ACCESS_MANAGE, what="API tokens of other users")
        if token.revoked_at is not None:
            raise InvalidInput(
                gettext_noop("API token #%(token_id)s was already revoked"),
                params={"token_id": token_id},
            )
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action=AuditAction.TOKEN_REVOKED,
            object_type=AuditObject.API_TOKEN,
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
            gettext_noop("Idempotency-Key must be 1 to 200 characters"),
            details={"field": "Idempotency-Key"},
            params={},
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


__all__ = [
    "Conflict",
    "PermissionDenied",
    "PreconditionFailed",
    "api_token_authenticate",
    "api_token_create",
    "api_token_revoke",
    "idempotency_begin",
    "idempotency_finish",
]
