"""User accounts: creating a user and setting a password, each checked against the password
policy (settings.AUTH_PASSWORD_VALIDATORS) and written to the audit log. The admin's user pages
are read-only; these services (via `closeout user`) are the way accounts change."""

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import InvalidInput


def password_check(password: str, user: AbstractBaseUser | None = None) -> None:
    """Raise InvalidInput with every validator's message (too short, too common, entirely
    numeric, too similar to the user's name or e-mail)."""
    try:
        password_validation.validate_password(password, user)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidInput(
            gettext_noop("password refused: %(messages)s"),
            details={"field": "password", "problems": list(exc.messages)},
            params={"messages": " ".join(exc.messages)},
        ) from exc


def user_create(
    *,
    actor: AbstractBaseUser | None,
    username: str,
    password: str,
    email: str = "",
    name: str = "",
    superuser: bool = False,
) -> AbstractBaseUser:
    """A new user (a superuser is also staff, so the read-only admin opens for them); `actor`
    None is the server's own command line. Roles come separately, by `closeout grant`."""
    if actor is not None:
        require(actor, Perm.ACCESS_MANAGE, what="user accounts")
    username = username.strip()
    if not username:
        raise InvalidInput(
            gettext_noop("user name is empty"), details={"field": "username"}, params={}
        )
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.filter(username=username).exists():
            raise InvalidInput(
                gettext_noop("a user named '%(username)s' exists"),
                details={"field": "username"},
                params={"username": username},
            )
        user = user_model(
            username=username,
            email=email.strip(),
            first_name=name.strip()[:150],
            is_staff=superuser,
            is_superuser=superuser,
        )
        password_check(password, user)
        user.set_password(password)
        user.save()
        audit_record(
            actor=actor,
            action=AuditAction.USER_CREATED,
            object_type=AuditObject.USER,
            object_id=user.pk,
            object_repr=username,
            data={"username": username, "email": user.email, "superuser": superuser},
            reason="user created",
        )
    return user


def user_password_set(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, password: str
) -> AbstractBaseUser:
    """A user may set their own password; anyone else's needs access.manage. `actor` None is
    the server's own command line (an operator's shell), as for `closeout token`."""
    if actor is not None and actor.pk != user.pk:
        require(actor, Perm.ACCESS_MANAGE, what="another user's password")
    password_check(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record(
            actor=actor,
            action=AuditAction.PASSWORD_SET,
            object_type=AuditObject.USER,
            object_id=user.pk,
            object_repr=user.get_username(),
            data={"own": actor is not None and actor.pk == user.pk},
            reason="password set",
        )
    return user
