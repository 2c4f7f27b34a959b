"""Counters shared by every server process: login throttling and API rate limits.

They live in the shared cache when CACHE_URL names one (Redis), else in the database (the
`Counter` table), so that every gunicorn worker and every machine behind the same database
counts the same attempts. `settings.CLOSEOUT_COUNTERS` ("cache" or "database") chooses.
"""

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from closeout.core.models import Counter

CACHE_PREFIX = "closeout:counter:"


def counter_key(kind: str, *parts: str) -> str:
    """A fixed-length key for user-supplied parts (user names, addresses, tokens)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


def counters_backend() -> str:
    return str(getattr(settings, "CLOSEOUT_COUNTERS", "database"))


def _cache() -> BaseCache:
    return caches[str(getattr(settings, "CLOSEOUT_COUNTERS_CACHE", "default"))]


def counter_hit(key: str, ttl_seconds: int) -> int:
    """Add one to the counter and return its new value. A missing or expired counter starts
    at 1 and expires `ttl_seconds` from now (the window opens at the first hit)."""
    if counters_backend() == "cache":
        cache = _cache()
        name = CACHE_PREFIX + key
        cache.add(name, 0, ttl_seconds)
        try:
            return int(cache.incr(name))
        except ValueError:  # expired between add and incr
            cache.set(name, 1, ttl_seconds)
            return 1
    now = timezone.now()
    value = _upsert_increment(key, now, now + timedelta(seconds=ttl_seconds))
    if value == 1:  # a new window: drop the rows whose windows have ended
        Counter.objects.filter(expires_at__lt=now).delete()
    return value


def _upsert_increment(key: str, now: datetime, expires: datetime) -> int:
    """One statement, atomic on PostgreSQL and SQLite (3.35+): insert the counter at 1, or
    add one to it, or restart it at 1 when its window has ended."""
    qn = connection.ops.quote_name
    table = qn(Counter._meta.db_table)
    at_now = connection.ops.adapt_datetimefield_value(now)
    at_expires = connection.ops.adapt_datetimefield_value(expires)
    # Only quoted identifiers of this model are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({qn('key')}, {qn('value')}, {qn('expires_at')}) "  # noqa: S608
        "VALUES (%s, 1, %s) "
        f"ON CONFLICT ({qn('key')}) DO UPDATE SET "
        f"{qn('value')} = CASE WHEN {table}.{qn('expires_at')} <= %s THEN 1 "
        f"ELSE {table}.{qn('value')} + 1 END, "
        f"{qn('expires_at')} = CASE WHEN {table}.{qn('expires_at')} <= %s "
        f"THEN excluded.{qn('expires_at')} ELSE {table}.{qn('expires_at')} END "
        f"RETURNING {qn('value')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, at_expires, at_now, at_now])
        row = cursor.fetchone()
    return int(row[0])


def counter_value(key: str) -> int:
    """The counter's value, 0 when missing or expired."""
    if counters_backend() == "cache":
        return int(_cache().get(CACHE_PREFIX + key, 0))
    row = Counter.objects.filter(key=key, expires_at__gt=timezone.now()).first()
    return row.value if row is not None else 0


def counter_set_once(key: str, value: int, ttl_seconds: int) -> bool:
    """Set the counter to `value` for `ttl_seconds` unless it is already set (and not
    expired); True when this call set it (so exactly one caller acts on it)."""
    if counters_backend() == "cache":
        return bool(_cache().add(CACHE_PREFIX + key, value, ttl_seconds))
    now = timezone.now()
    expires = now + timedelta(seconds=ttl_seconds)
    with transaction.atomic():
        row = Counter.objects.select_for_update().filter(key=key).first()
        if row is None:
            try:
                with transaction.atomic():
                    Counter.objects.create(key=key, value=value, expires_at=expires)
            except IntegrityError:
                return False
            return True
        if row.expires_at > now:
            return False
        row.value, row.expires_at = value, expires
        row.save(update_fields=["value", "expires_at"])
        return True


def counter_clear(*keys: str) -> None:
    if counters_backend() == "cache":
        _cache().delete_many([CACHE_PREFIX + key for key in keys])
        return
    Counter.objects.filter(key__in=keys).delete()
