"""SECRET_KEY: a random key made once in var/ (mode 0600) and reused; weak or published keys
stop the process."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from closeout.core.secret_key import KEY_FILE_NAME, PUBLISHED_KEYS, secret_key

REPO = Path(__file__).resolve().parents[2]
CLOSEOUT = Path(sys.executable).parent / "closeout"


def test_key_is_generated_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    first = secret_key(None, tmp_path / "var")
    path = tmp_path / "var" / KEY_FILE_NAME
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 50 and len(set(first)) >= 5
    assert secret_key(None, tmp_path / "var") == first
    assert secret_key("", tmp_path / "var") == first  # an empty variable is "not set"


def test_environment_key_wins_and_no_file_is_made(tmp_path: Path) -> None:
    key = get_random_secret_key()
    assert secret_key(key, tmp_path) == key
    assert not (tmp_path / KEY_FILE_NAME).exists()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (next(iter(PUBLISHED_KEYS)), "published in the closeout repository"),
        ("short-but-varied-0123456789", "fewer than 50"),
        ("ab" * 40, "fewer than 5 different characters"),
        ("django-insecure-" + get_random_secret_key(), "django-insecure-"),
    ],
)
def test_weak_or_published_keys_are_refused(tmp_path: Path, key: str, problem: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=problem):
        secret_key(key, tmp_path)
    (tmp_path / KEY_FILE_NAME).write_text(key + "\n")
    with pytest.raises(ImproperlyConfigured, match=problem) as refused:
        secret_key(None, tmp_path)
    assert str(tmp_path / KEY_FILE_NAME) in str(refused.value)


def _closeout(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Not the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE either (set in this process for
    # Playwright): `check --deploy` rightly refuses it.
    dropped = {"SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [str(CLOSEOUT), *args],
        env={**base, "DJANGO_SETTINGS_MODULE": "closeout.settings", **env},
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_the_published_key_stops_the_start(tmp_path: Path) -> None:
    result = _closeout(
        "check", SECRET_KEY=next(iter(PUBLISHED_KEYS)), CLOSEOUT_VAR_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    assert "published in the closeout repository" in result.stderr
