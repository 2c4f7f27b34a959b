"""The audit key ring: the secrets that seal audit events and checkpoints (HMAC-SHA-256).

The keys never live in the database, so a database writer cannot seal a forged event. They come
from the environment, `CLOSEOUT_AUDIT_KEY=ID:SECRET[,ID:SECRET…]` (the first one seals new
events; a bare SECRET gets the id "env"), or else from a key file, `CLOSEOUT_AUDIT_KEY_FILE`
(default var/audit-keys.json), created with mode 0600 on first use so that `make run` needs
nothing. Rotation adds a key and makes it current; old keys stay to verify what they sealed.
"""

import json
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop

from closeout.core.errors import DomainError, InvalidInput

log = logging.getLogger(__name__)

KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,16}$")
MIN_SECRET_LENGTH = 32
ENV_KEY_ID = "env"


class AuditKeyUnknown(DomainError):
    """An event or checkpoint names a key this installation does not hold."""

    code = "audit_key_unknown"
    http_status = 409

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"audit key {key_id!r} is not in this installation's key ring "
            "(CLOSEOUT_AUDIT_KEY or the key file)",
            details={"key_id": key_id},
        )
        self.key_id = key_id


@dataclass(frozen=True)
class AuditKeyRing:
    current: str
    secrets: dict[str, bytes]
    source: str  # "environment" or the key file's path

    def secret(self, key_id: str) -> bytes:
        try:
            return self.secrets[key_id]
        except KeyError:
            raise AuditKeyUnknown(key_id) from None

    def ids(self) -> list[str]:
        return sorted(self.secrets)


def _key_file() -> Path:
    return Path(settings.CLOSEOUT_AUDIT_KEY_FILE)


def _checked_secret(key_id: str, secret: str, where: str) -> bytes:
    if not KEY_ID.match(key_id):
        raise ImproperlyConfigured(
            f"{where}: audit key id {key_id!r} must be 1-16 letters, digits, '.', '_' or '-'"
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise ImproperlyConfigured(
            f"{where}: audit key {key_id!r} is shorter than {MIN_SECRET_LENGTH} characters"
        )
    return secret.encode()


def _ring_from_env(value: str) -> AuditKeyRing:
    keys: dict[str, bytes] = {}
    current = ""
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, secret = part.partition(":")
        if not sep:
            key_id, secret = ENV_KEY_ID, part
        if key_id in keys:
            raise ImproperlyConfigured(f"CLOSEOUT_AUDIT_KEY names key {key_id!r} twice")
        keys[key_id] = _checked_secret(key_id, secret, "CLOSEOUT_AUDIT_KEY")
        current = current or key_id
    if not keys:
        raise ImproperlyConfigured("CLOSEOUT_AUDIT_KEY is set but holds no key")
    return AuditKeyRing(current, keys, "environment")


def _ring_from_file(path: Path) -> AuditKeyRing:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        current, entries = raw["current"], raw["keys"]
        if not isinstance(entries, dict) or current not in entries:
            raise ValueError("'current' must name one of 'keys'")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImproperlyConfigured(f"audit key file {path} is unreadable: {exc}") from exc
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("audit key file %s is readable by others (mode %o): chmod 600", path, mode)
    keys = {str(k): _checked_secret(str(k), str(v), str(path)) for k, v in entries.items()}
    return AuditKeyRing(str(current), keys, str(path))


def _write_new(path: Path, content: dict[str, Any]) -> bool:
    """Create `path` with mode 0600 holding `content`, atomically; False if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(content, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the file meanwhile
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _new_secret() -> str:
    return secrets.token_hex(32)


_cache: dict[tuple[str, str, int], AuditKeyRing] = {}


def audit_key_ring() -> AuditKeyRing:
    """The key ring in force; creates the key file (one key, "k1") on first use."""
    env = getattr(settings, "CLOSEOUT_AUDIT_KEY", "")
    if env:
        cache_key = (env, "", 0)
        if cache_key not in _cache:
            _cache[cache_key] = _ring_from_env(env)
        return _cache[cache_key]
    path = _key_file()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        if _write_new(path, {"current": "k1", "keys": {"k1": _new_secret()}}):
            log.warning("audit key file created: %s (keep it; back it up apart)", path)
        mtime = path.stat().st_mtime_ns
    cache_key = ("", str(path), mtime)
    ring = _cache.get(cache_key)
    if ring is None:
        ring = _ring_from_file(path)
        _cache.clear()
        _cache[cache_key] = ring
    return ring


def audit_key_rotate(*, key_id: str = "") -> AuditKeyRing:
    """Add a new key to the key file and make it current (new events are sealed with it; the
    old keys stay to verify what they sealed). With CLOSEOUT_AUDIT_KEY set, rotation is the
    operator's: put the new ID:SECRET first in the variable."""
    if getattr(settings, "CLOSEOUT_AUDIT_KEY", ""):
        raise InvalidInput(
            gettext_noop(
                "the audit keys come from CLOSEOUT_AUDIT_KEY: rotate by putting a new ID:SECRET "
                "first in it (keep the old ones after it)"
            ),
            params={},
        )
    ring = audit_key_ring()
    if not key_id:
        numbers = [int(k[1:]) for k in ring.secrets if re.fullmatch(r"k\d+", k)]
        key_id = f"k{max(numbers, default=0) + 1}"
    if not KEY_ID.match(key_id):
        raise InvalidInput(
            gettext_noop("key id %(key)s must be 1-16 letters, digits, '.', '_' or '-'"),
            params={"key": repr(key_id)},
        )
    if key_id in ring.secrets:
        raise InvalidInput(
            gettext_noop("audit key %(key)s exists already"), params={"key": repr(key_id)}
        )
    path = _key_file()
    content = {
        "current": key_id,
        "keys": {**{k: v.decode() for k, v in ring.secrets.items()}, key_id: _new_secret()},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(content, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _cache.clear()
    return audit_key_ring()
