"""The sign-in throttle of every login form (workbench and admin): failures counted in the shared
counters (core.counters: the cache with CACHE_URL, else the database), so every server process
sees the same attempts.

Three keys, each with its own limit, so that neither a stranger nor a shared address can lock
a person out for long:
- account and address together: the tight limit (default 5), what a guesser behind one
  address hits first, without touching anyone else behind the same NAT or proxy;
- address alone: a looser limit (default 20), against trying many accounts from one place;
- account alone: a looser limit (default 10), against guessing one account from many places.
Reaching a limit locks that key for a fixed time (default 15 minutes) and writes one audit
event (`login_locked_out`); attempts during a lockout are refused without checking the
password and without extending it.
"""

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.counters import counter_clear, counter_hit, counter_key, counter_set_once
from closeout.core.counters import counter_value as _counter_value

USER_ADDRESS, ADDRESS, USER = "user_address", "address", "user"


@dataclass(frozen=True)
class ThrottleKey:
    scope: str
    key: str
    limit: int

    @property
    def failures(self) -> str:
        return f"login-fail:{self.key}"

    @property
    def lock(self) -> str:
        return f"login-lock:{self.key}"


def normalise_username(username: str) -> str:
    return username.strip().casefold()


def address_key(address: str) -> str:
    """IPv6 clients are counted per /64 (one subscriber's usual allocation), IPv4 per
    address."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _setting(name: str) -> int:
    return int(getattr(settings, name))


def throttle_keys(username: str, address: str) -> list[ThrottleKey]:
    user, addr = normalise_username(username), address_key(address)
    return [
        ThrottleKey(
            USER_ADDRESS,
            counter_key(USER_ADDRESS, user, addr),
            _setting("CLOSEOUT_LOGIN_LIMIT_USER_ADDRESS"),
        ),
        ThrottleKey(ADDRESS, counter_key(ADDRESS, addr), _setting("CLOSEOUT_LOGIN_LIMIT_ADDRESS")),
        ThrottleKey(USER, counter_key(USER, user), _setting("CLOSEOUT_LOGIN_LIMIT_USER")),
    ]


def login_locked_until(username: str, address: str) -> datetime | None:
    """When the latest lockout covering this account or address ends; None when none does."""
    now = timezone.now().timestamp()
    ends = [_counter_value(key.lock) for key in throttle_keys(username, address)]
    latest = max((end for end in ends if end > now), default=None)
    return datetime.fromtimestamp(latest, tz=timezone.get_current_timezone()) if latest else None


def lockout_minutes(until: datetime) -> int:
    return max(1, math.ceil((until - timezone.now()).total_seconds() / 60))


def login_failure_record(username: str, address: str) -> datetime | None:
    """Count one failed sign-in; returns the end of the lockout it started, if any."""
    window = _setting("CLOSEOUT_LOGIN_WINDOW_SECONDS")
    lockout = _setting("CLOSEOUT_LOGIN_LOCKOUT_SECONDS")
    started: datetime | None = None
    for key in throttle_keys(username, address):
        failures = counter_hit(key.failures, window)
        if failures < key.limit:
            continue
        until = timezone.now() + timedelta(seconds=lockout)
        if not counter_set_once(key.lock, math.ceil(until.timestamp()), lockout):
            continue
        # The counter starts afresh after the lockout (no instant relock on the next miss).
        counter_clear(key.failures)
        started = max(started, until) if started else until
        _audit_lockout(key, username=username, address=address, failures=failures, until=until)
    return started


def login_success_record(username: str, address: str) -> None:
    """A correct password clears the failures of this account from this address only."""
    counter_clear(throttle_keys(username, address)[0].failures)


def login_throttle_reset(username: str, address: str) -> None:
    """Lift every lockout and count of this account and address (for administrators)."""
    keys = throttle_keys(username, address)
    counter_clear(*[k.failures for k in keys], *[k.lock for k in keys])


def _audit_lockout(
    key: ThrottleKey, *, username: str, address: str, failures: int, until: datetime
) -> None:
    shown_user = username.strip()[:150]
    target = {USER_ADDRESS: f"{shown_user} @ {address}", ADDRESS: address, USER: shown_user}
    with transaction.atomic():
        audit_record(
            actor=None,
            action=AuditAction.LOGIN_LOCKED_OUT,
            object_type=AuditObject.LOGIN,
            object_id=target[key.scope][:64],
            object_repr=target[key.scope],
            data={
                "scope": key.scope,
                "username": shown_user,
                "address": address,
                "failures": failures,
                "limit": key.limit,
                "locked_until": until,
            },
            reason="too many failed sign-in attempts",
        )
