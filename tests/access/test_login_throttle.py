"""One sign-in throttle for every login form (workbench /login/ and /admin/login/), counted in
the shared counters (database, or the cache with CACHE_URL) per account and address together,
per address and per account, with lockouts that end and are audited."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.models import Counter
from closeout.web.forms import LoginThrottleMixin

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery-9"
WORKBENCH, ADMIN = "/login/", "/admin/login/"
LOCKED = "Too many failed sign-in attempts"
REDIS_URL = os.environ.get("CLOSEOUT_TEST_CACHE_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture(autouse=True)
def _database_counters(settings: Settings) -> None:
    settings.CLOSEOUT_COUNTERS = "database"
    settings.LANGUAGE_CODE = "en"
    # Dozens of sign-ins: a fast hasher (the throttle does not depend on it).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


@pytest.fixture
def clerk(db: None) -> User:
    return User.objects.create_user("clerk", password=PASSWORD)


def client_at(address: str) -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR=address)


def sign_in(client: Client, url: str, username: str, password: str) -> tuple[bool, str]:
    """(signed in?, page text)."""
    response = client.post(url, {"username": username, "password": password})
    return "_auth_user_id" in client.session, response.content.decode()


def lockouts() -> list[dict[str, Any]]:
    events = AuditEvent.objects.filter(action=AuditAction.LOGIN_LOCKED_OUT).order_by("seq")
    return [event.data for event in events]


def test_every_login_form_uses_the_one_throttle() -> None:
    from django.contrib import admin

    from closeout.web.views import WorkbenchLoginView

    assert issubclass(admin.site.login_form, LoginThrottleMixin)  # type: ignore[arg-type]
    assert issubclass(WorkbenchLoginView.authentication_form, LoginThrottleMixin)


def test_admin_login_refuses_the_right_password_after_15_wrong(root: User) -> None:
    client = client_at("203.0.113.5")
    for _ in range(15):
        assert sign_in(client, ADMIN, "root", "wrong-password")[0] is False
    signed_in, page = sign_in(client, ADMIN, "root", PASSWORD)
    assert signed_in is False
    assert LOCKED in page
    # One lockout, of the account from that address; attempts while locked are not counted
    # (they neither extend the lockout nor reach the looser limits).
    (event,) = lockouts()
    assert event["scope"] == "user_address"
    assert (event["username"], event["address"], event["failures"]) == ("root", "203.0.113.5", 5)


def test_locked_on_the_workbench_is_locked_on_the_admin_and_back(root: User, clerk: User) -> None:
    client = client_at("203.0.113.6")
    for _ in range(5):
        sign_in(client, WORKBENCH, "root", "wrong-password")
    signed_in, page = sign_in(client_at("203.0.113.6"), ADMIN, "root", PASSWORD)
    assert (signed_in, LOCKED in page) == (False, True)
    for _ in range(5):
        sign_in(client, ADMIN, "clerk", "wrong-password")
    signed_in, page = sign_in(client_at("203.0.113.6"), WORKBENCH, "clerk", PASSWORD)
    assert (signed_in, LOCKED in page) == (False, True)


def test_another_user_behind_the_same_address_is_not_locked(root: User, clerk: User) -> None:
    attacker = client_at("198.51.100.20")
    for _ in range(12):
        sign_in(attacker, WORKBENCH, "root", "wrong-password")
    assert sign_in(attacker, WORKBENCH, "root", PASSWORD)[0] is False
    # The same NAT address, another person: the tight limit is per account and address.
    assert sign_in(client_at("198.51.100.20"), WORKBENCH, "clerk", PASSWORD)[0] is True
    # And the victim signs in from their own address.
    assert sign_in(client_at("192.0.2.44"), WORKBENCH, "root", PASSWORD)[0] is True


def test_guessing_many_accounts_from_one_address_hits_the_address_limit(
    clerk: User, settings: Settings
) -> None:
    settings.CLOSEOUT_LOGIN_LIMIT_ADDRESS = 6
    client = client_at("198.51.100.30")
    for n in range(6):
        sign_in(client, WORKBENCH, f"guess-{n}", "wrong-password")
    signed_in, page = sign_in(client_at("198.51.100.30"), WORKBENCH, "clerk", PASSWORD)
    assert (signed_in, LOCKED in page) == (False, True)
    assert [e["scope"] for e in lockouts()] == ["address"]
    assert sign_in(client_at("198.51.100.31"), WORKBENCH, "clerk", PASSWORD)[0] is True


def test_guessing_one_account_from_many_addresses_hits_the_account_limit(clerk: User) -> None:
    for n in range(10):
        sign_in(client_at(f"198.51.100.{100 + n}"), WORKBENCH, "clerk", "wrong-password")
    signed_in, page = sign_in(client_at("192.0.2.1"), WORKBENCH, "clerk", PASSWORD)
    assert (signed_in, LOCKED in page) == (False, True)
    assert [e["scope"] for e in lockouts()] == ["user"]


def test_a_lockout_ends_after_its_time(clerk: User) -> None:
    client = client_at("203.0.113.9")
    for _ in range(5):
        sign_in(client, WORKBENCH, "clerk", "wrong-password")
    assert sign_in(client, WORKBENCH, "clerk", PASSWORD)[0] is False
    # Fifteen minutes later (the lockout's end is kept with the counter).
    Counter.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert sign_in(client_at("203.0.113.9"), WORKBENCH, "clerk", PASSWORD)[0] is True


def test_a_success_clears_the_count_of_that_account_and_address(clerk: User) -> None:
    client = client_at("203.0.113.10")
    for _ in range(4):
        sign_in(client, WORKBENCH, "clerk", "wrong-password")
    assert sign_in(client, WORKBENCH, "clerk", PASSWORD)[0] is True
    client = client_at("203.0.113.10")
    for _ in range(4):
        sign_in(client, WORKBENCH, "clerk", "wrong-password")
    assert sign_in(client, WORKBENCH, "clerk", PASSWORD)[0] is True
    assert lockouts() == []


def test_a_post_without_a_password_does_not_clear_the_count(clerk: User) -> None:
    client = client_at("203.0.113.12")
    for _ in range(4):
        sign_in(client, WORKBENCH, "clerk", "wrong-password")
        client.post(WORKBENCH, {"username": "clerk", "password": ""})
    signed_in, page = sign_in(client, WORKBENCH, "clerk", "wrong-password")
    assert (signed_in, LOCKED in page) == (False, True)


def test_counts_are_kept_in_the_database_not_in_a_process(clerk: User) -> None:
    """Two clients, and the process's own cache emptied between them: the database counter
    (what every gunicorn worker reads) carries the count."""
    for _ in range(3):
        sign_in(client_at("203.0.113.11"), WORKBENCH, "clerk", "wrong-password")
    assert Counter.objects.filter(key__startswith="login-fail:", value=3).count() == 3
    caches["default"].clear()
    for _ in range(2):
        sign_in(client_at("203.0.113.11"), ADMIN, "clerk", "wrong-password")
    assert sign_in(client_at("203.0.113.11"), WORKBENCH, "clerk", PASSWORD)[0] is False
    assert Counter.objects.filter(key__startswith="login-lock:").count() == 1


def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return str(exc)
    return None


def test_counts_are_shared_through_redis_by_separate_processes(
    settings: Settings, tmp_path: Any
) -> None:
    problem = _redis_problem()
    if problem is not None:
        if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required but does not answer: {problem}")
        pytest.skip(f"Redis not reachable ({problem})")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    settings.CLOSEOUT_COUNTERS = "cache"
    run = uuid.uuid4().hex[:8]
    name, address = f"clerk-{run}", f"2001:db8:{run[:4]}::7"
    User.objects.create_user(name, password=PASSWORD)
    script = (
        "import django; django.setup()\n"
        "from closeout.access.login_throttle import login_failure_record\n"
        f"for _ in range(4): assert login_failure_record({name!r}, {address!r}) is None\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DJANGO_SETTINGS_MODULE": "closeout.settings",
        "CACHE_URL": REDIS_URL,
        "CLOSEOUT_VAR_DIR": str(tmp_path),
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    # The fifth failure, in this process, from the same /64: the lockout starts.
    signed_in, page = sign_in(
        client_at(address.replace("::7", "::8")), WORKBENCH, name, "wrong-password"
    )
    assert (signed_in, LOCKED in page) == (False, True)
    assert sign_in(client_at(address), WORKBENCH, name, PASSWORD)[0] is False
    assert [e["scope"] for e in lockouts()] == ["user_address"]
    from closeout.access.login_throttle import login_throttle_reset

    login_throttle_reset(name, address)
    assert sign_in(client_at(address), WORKBENCH, name, PASSWORD)[0] is True
