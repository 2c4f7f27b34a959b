"""The SECRET_KEY: from the environment, else a random key made once in a file under var/.

Imported by settings.py, so it imports nothing of closeout and no model."""

import os
from pathlib import Path

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

KEY_FILE_NAME = "secret-key"
# Keys that were published in this repository: anyone can sign sessions with them.
PUBLISHED_KEYS = frozenset({"closeout-embedded-default-not-for-production"})


def secret_key_problem(key: str) -> str:
    """Why `key` may not sign sessions, or "" when it may (Django's own rule of W009, plus
    the keys this repository published)."""
    if key in PUBLISHED_KEYS:
        return "it is the key published in the closeout repository"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(key)} characters, fewer than {SECRET_KEY_MIN_LENGTH}"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"it has fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different characters"
    if key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"it starts with Django's '{SECRET_KEY_INSECURE_PREFIX}' marker"
    return ""


def key_file_secret(path: Path) -> str:
    """The key in `path`; made (random, mode 0600) when the file does not exist yet. Several
    server processes starting at once agree on the first one written."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = get_random_secret_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def secret_key(environment_value: str | None, var_dir: Path) -> str:
    """SECRET_KEY from the environment when set, else from var/secret-key; refused (the
    process does not start) when it is weak or published."""
    if environment_value:
        key, source = environment_value, "SECRET_KEY from the environment"
    else:
        path = var_dir / KEY_FILE_NAME
        key, source = key_file_secret(path), f"the secret key in {path}"
    problem = secret_key_problem(key)
    if problem:
        raise ImproperlyConfigured(
            f"{source} may not be used: {problem}. Set SECRET_KEY to at least "
            f"{SECRET_KEY_MIN_LENGTH} random characters (python -c 'from "
            "django.core.management.utils import get_random_secret_key as k; print(k())'), "
            f"or unset it to use a key generated in {var_dir / KEY_FILE_NAME}."
        )
    return key
