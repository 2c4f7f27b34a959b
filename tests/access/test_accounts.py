"""The password policy (Django's validators, 12 characters at least) and `closeout user`, the
audited way to create accounts and set passwords (the admin's user pages are read-only)."""

import io
import sys

import pytest
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation
from pytest_django.fixtures import Settings

from closeout.access.accounts import password_check
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.errors import InvalidInput
from closeout.demo.load import DEMO_EMAIL_DOMAIN, DEMO_PASSWORD, DEMO_USERS
from tests.factories import Org, user_with_role

pytestmark = pytest.mark.django_db

TOO_SHORT = "This password is too short. It must contain at least 12 characters."
COMMON = "This password is too common."
NUMERIC = "This password is entirely numeric."


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def problems(password: str, user: User | None = None) -> list[str]:
    with translation.override("en"):
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            return list(exc.messages)
    return []


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("password", [TOO_SHORT, COMMON]),
        ("12345678", [TOO_SHORT, COMMON, NUMERIC]),
        ("123456789012", [NUMERIC]),
        ("480938271650", [NUMERIC]),
        ("seven-chars", [TOO_SHORT]),
    ],
)
def test_weak_passwords_are_refused_with_the_validators_messages(
    password: str, expected: list[str]
) -> None:
    assert problems(password) == expected


def test_a_password_like_the_users_name_or_address_is_refused() -> None:
    user = User(username="wang.fang", email="wang.fang@example.com")
    assert problems("wang.fang.2026", user) == ["The password is too similar to the username."]
    assert problems("thirteen-quiet-owls", user) == []


def test_the_demo_password_passes_the_policy_for_every_demo_user() -> None:
    for spec in DEMO_USERS:
        user = User(
            username=spec.username,
            email=f"{spec.username}@{DEMO_EMAIL_DOMAIN}",
            first_name=spec.name[:150],
        )
        assert problems(DEMO_PASSWORD, user) == [], spec.username


def test_password_check_names_every_problem_in_one_refusal() -> None:
    with translation.override("en"), pytest.raises(InvalidInput) as caught:
        password_check("12345678")
    assert caught.value.details["field"] == "password"
    assert caught.value.details["problems"] == [TOO_SHORT, COMMON, NUMERIC]


def run_user(monkeypatch: pytest.MonkeyPatch, password: str, *args: str) -> str:
    """`closeout user …` with the password on standard input (not a terminal)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    out = io.StringIO()
    with translation.override("en"):
        call_command("user", *args, stdout=out)
    return out.getvalue()


def audit_of(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_user_create_and_set_password_are_validated_and_audited(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_with_role("keeper-of-keys", "admin", org.company)
    text = run_user(
        monkeypatch,
        "thirteen-quiet-owls",
        "create",
        "zhao.lei",
        "--email",
        "zhao.lei@example.com",
        "--as",
        "keeper-of-keys",
    )
    assert "user zhao.lei created" in text
    assert authenticate(username="zhao.lei", password="thirteen-quiet-owls") is not None
    (created,) = audit_of(AuditAction.USER_CREATED)
    assert (created.actor_name, created.object_repr) == ("keeper-of-keys", "zhao.lei")
    assert "thirteen-quiet-owls" not in str(created.data)

    with pytest.raises(CommandError, match="too common"):
        run_user(monkeypatch, "password", "set-password", "zhao.lei", "--as", "keeper-of-keys")
    with pytest.raises(CommandError, match="entirely numeric"):
        run_user(monkeypatch, "480938271650", "set-password", "zhao.lei", "--as", "zhao.lei")
    assert audit_of(AuditAction.PASSWORD_SET) == []

    # Their own password: no access.manage needed.
    run_user(monkeypatch, "orange-kite-harbour", "set-password", "zhao.lei", "--as", "zhao.lei")
    assert authenticate(username="zhao.lei", password="orange-kite-harbour") is not None
    (own,) = audit_of(AuditAction.PASSWORD_SET)
    assert (own.actor_name, own.data) == ("zhao.lei", {"own": True})


def test_someone_elses_password_needs_access_manage(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_with_role("plain-buyer", "operator", org.dept_a)
    victim = User.objects.create_user("victim", password="orange-kite-harbour")
    with pytest.raises(CommandError, match=r"access\.manage"):
        run_user(
            monkeypatch, "river-stone-lantern", "set-password", "victim", "--as", "plain-buyer"
        )
    with pytest.raises(CommandError, match=r"access\.manage"):
        run_user(monkeypatch, "river-stone-lantern", "create", "mole", "--as", "plain-buyer")
    victim.refresh_from_db()
    assert victim.check_password("orange-kite-harbour")
    assert not User.objects.filter(username="mole").exists()


def test_the_operator_creates_the_first_superuser_without_as(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = run_user(monkeypatch, "river-stone-lantern", "create", "ops", "--superuser")
    assert "superuser ops created" in text
    ops = User.objects.get(username="ops")
    assert ops.is_superuser and ops.is_staff
    (created,) = audit_of(AuditAction.USER_CREATED)
    assert created.actor_name == "system" and created.data["superuser"] is True
    with pytest.raises(CommandError, match="too short"):
        run_user(monkeypatch, "short-one", "create", "ops2")
