"""Settings from the environment: the production switch passes `check --deploy`, the session
lifetime, the log format. Each case runs in a subprocess, because settings are read once."""

import json
import os
import subprocess
import sys
from pathlib import Path

from closeout.core.secret_key import PUBLISHED_KEYS
from tests.core.test_secret_key import _closeout

REPO = Path(__file__).resolve().parents[1]


def _settings(names: list[str], tmp_path: Path, **env: str) -> dict[str, object]:
    """The named settings as settings.py computes them from this environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLOSEOUT_", "DEBUG"))}
    code = (
        "import json, closeout.settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "CLOSEOUT_VAR_DIR": str(tmp_path), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


PROTECTIONS = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
]


def test_production_switch_turns_on_https_hsts_and_secure_cookies(tmp_path: Path) -> None:
    assert _settings(PROTECTIONS, tmp_path) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }
    assert _settings(PROTECTIONS, tmp_path, CLOSEOUT_PRODUCTION="1") == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_session_lasts_eight_hours_unless_configured(tmp_path: Path) -> None:
    assert _settings(["SESSION_COOKIE_AGE"], tmp_path) == {"SESSION_COOKIE_AGE": 8 * 3600}
    hours = _settings(["SESSION_COOKIE_AGE"], tmp_path, CLOSEOUT_SESSION_HOURS="2")
    assert hours == {"SESSION_COOKIE_AGE": 2 * 3600}
    refused = _closeout("check", CLOSEOUT_SESSION_HOURS="0", CLOSEOUT_VAR_DIR=str(tmp_path))
    assert refused.returncode != 0 and "CLOSEOUT_SESSION_HOURS" in refused.stderr


def test_check_deploy_passes_with_the_production_switch(tmp_path: Path) -> None:
    result = _closeout(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        CLOSEOUT_PRODUCTION="1",
        DEBUG="0",
        ALLOWED_HOSTS="closeout.example.com",
        CLOSEOUT_VAR_DIR=str(tmp_path),
    )
    print(result.stdout, result.stderr)  # the check's own words, for the record
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_names_the_missing_protections_without_the_switch(tmp_path: Path) -> None:
    result = _closeout(
        "check", "--deploy", "--fail-level", "WARNING", CLOSEOUT_VAR_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    for code in ("W004", "W008", "W012", "W016"):
        assert f"security.{code}" in result.stderr
    assert "security.W009" not in result.stderr  # the generated key is strong


def test_published_key_is_refused_in_production_too(tmp_path: Path) -> None:
    result = _closeout(
        "check",
        "--deploy",
        CLOSEOUT_PRODUCTION="1",
        SECRET_KEY=next(iter(PUBLISHED_KEYS)),
        CLOSEOUT_VAR_DIR=str(tmp_path),
    )
    assert result.returncode != 0 and "published" in result.stderr
