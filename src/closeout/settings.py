"""Django settings for closeout, read from the environment (12-factor).

The defaults need nothing: SQLite under var/, no broker, console logging.
"""

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from closeout.core.secret_key import secret_key

# Lets admin and queryset classes be subscripted at run time, as the type checker wants.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("CLOSEOUT_VAR_DIR", Path.cwd() / "var"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("DEBUG", False)
# SECRET_KEY from the environment, else a random key generated on first run into
# var/secret-key (mode 0600) and reused; a weak or published key stops the start.
SECRET_KEY = secret_key(os.environ.get("SECRET_KEY"), VAR_DIR)
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "closeout.core",
    "closeout.audit",
    "closeout.access",
    "closeout.documents",
    "closeout.closing",
    "closeout.notifications",
    "closeout.approvals",
    "closeout.batches",
    "closeout.alerts",
    "closeout.reports",
    "closeout.ops",
    "closeout.api",
    "closeout.web",
    "closeout.demo",
    "django_htmx",
    # Only for its bundled Swagger UI: /api/docs then loads nothing from a CDN.
    "ninja",
]

MIDDLEWARE = [
    "closeout.core.middleware.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the session, locale and user: a refused page is translated and has its header.
    "closeout.core.middleware.RefuseNulMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A DomainError a page does not handle becomes the refused page (web.refusals).
    "closeout.web.refusals.RefusalMiddleware",
    "closeout.core.middleware.NoStoreMiddleware",
]

ROOT_URLCONF = "closeout.urls"
WSGI_APPLICATION = "closeout.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

_sqlite_path = VAR_DIR / "closeout.sqlite3"
if "DATABASE_URL" not in os.environ:
    # The embedded default keeps its database under var/; a fresh checkout has no var/ yet.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{_sqlite_path}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # IMMEDIATE transactions take the write lock up front, so concurrent writers wait
    # (busy timeout) instead of failing on a lock upgrade; WAL lets readers run meanwhile.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # PostgreSQL's JIT compiles the queue's rule filters for ~200 ms, longer than the query
    # itself runs; closeout's queries are index-driven and gain nothing from it.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache holds queue tab counts and, when CACHE_URL is set (e.g. redis://127.0.0.1:6379/1),
# the login throttle and API rate-limit counters, shared by every server process; without it
# those counters live in the database (CLOSEOUT_COUNTERS below).
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
        }
        if os.environ.get("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Login throttling and API rate limits count in one place for every server process: the
# shared cache when CACHE_URL is set, else the database (core.Counter). CLOSEOUT_COUNTERS
# ("cache" or "database") overrides the choice.
CLOSEOUT_COUNTERS = os.environ.get(
    "CLOSEOUT_COUNTERS", "cache" if os.environ.get("CACHE_URL") else "database"
)
if CLOSEOUT_COUNTERS not in {"cache", "database"}:
    raise ImproperlyConfigured(
        f"CLOSEOUT_COUNTERS must be 'cache' or 'database', got {CLOSEOUT_COUNTERS!r}"
    )


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default)).strip()
    if not value.isdigit() or int(value) <= 0:
        raise ImproperlyConfigured(f"{name} must be a whole number above 0, got {value!r}")
    return int(value)


# Sign-in throttle (every login form: the workbench and /admin/): failures are counted per
# account and address together (the tight limit), per address and per account; reaching a
# limit locks that key for CLOSEOUT_LOGIN_LOCKOUT_SECONDS. Failures count within a window of
# CLOSEOUT_LOGIN_WINDOW_SECONDS from the first one.
CLOSEOUT_LOGIN_LIMIT_USER_ADDRESS = _env_int("CLOSEOUT_LOGIN_LIMIT_USER_ADDRESS", 5)
CLOSEOUT_LOGIN_LIMIT_ADDRESS = _env_int("CLOSEOUT_LOGIN_LIMIT_ADDRESS", 20)
CLOSEOUT_LOGIN_LIMIT_USER = _env_int("CLOSEOUT_LOGIN_LIMIT_USER", 10)
CLOSEOUT_LOGIN_WINDOW_SECONDS = _env_int("CLOSEOUT_LOGIN_WINDOW_SECONDS", 15 * 60)
CLOSEOUT_LOGIN_LOCKOUT_SECONDS = _env_int("CLOSEOUT_LOGIN_LOCKOUT_SECONDS", 15 * 60)

# API rate limits per minute: per token, per signed-in user (the pages' own calls), and
# invalid bearer tokens per address (guessing).
CLOSEOUT_API_RATE_PER_MINUTE = _env_int("CLOSEOUT_API_RATE_PER_MINUTE", 6000)
CLOSEOUT_API_SESSION_RATE_PER_MINUTE = _env_int("CLOSEOUT_API_SESSION_RATE_PER_MINUTE", 1200)
CLOSEOUT_API_INVALID_TOKEN_RATE_PER_MINUTE = _env_int(
    "CLOSEOUT_API_INVALID_TOKEN_RATE_PER_MINUTE", 30
)

# Webhooks never go to this machine or the internal network (loopback, private, link-local,
# multicast, reserved, unspecified) unless this list names the host, address or network
# (comma-separated, e.g. "erp.internal,10.1.2.0/24").
CLOSEOUT_WEBHOOK_ALLOWED_HOSTS = [
    part.strip()
    for part in os.environ.get("CLOSEOUT_WEBHOOK_ALLOWED_HOSTS", "").split(",")
    if part.strip()
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

# Production switch: CLOSEOUT_PRODUCTION=1 (served over HTTPS) turns on HTTPS redirects, HSTS
# and secure cookies, so `closeout check --deploy` passes. Behind a proxy that terminates TLS,
# CLOSEOUT_PROXY_SSL_HEADER=1 trusts its X-Forwarded-Proto header.
PRODUCTION = _env_bool("CLOSEOUT_PRODUCTION", False)
TLS = PRODUCTION or _env_bool("CLOSEOUT_TLS", False)
SECURE_SSL_REDIRECT = TLS
# Load balancers and Prometheus probe these over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(os.environ.get("CLOSEOUT_HSTS_SECONDS", "31536000")) if TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = TLS
SECURE_HSTS_PRELOAD = TLS
if _env_bool("CLOSEOUT_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = TLS or (not DEBUG and _env_bool("SECURE_COOKIES", False))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# A session ends this many hours after sign-in (Django's default is two weeks).
_session_hours = os.environ.get("CLOSEOUT_SESSION_HOURS", "8")
if not _session_hours.strip().isdigit() or int(_session_hours) < 1:
    raise ImproperlyConfigured(
        f"CLOSEOUT_SESSION_HOURS must be a whole number of hours ≥ 1, got {_session_hours!r}"
    )
SESSION_COOKIE_AGE = int(_session_hours) * 3600

# Content Security Policy (django-csp): scripts and styles only from our own static files, no
# inline script or style anywhere. It holds for the admin and /api/docs too: Swagger UI is
# served from ninja's bundled files and sets its styles through the DOM, which CSP allows.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Operations: Prometheus metrics at /metrics for callers with this bearer token (and always
# from the loopback address). Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR.
CLOSEOUT_METRICS_TOKEN = os.environ.get("CLOSEOUT_METRICS_TOKEN", "")
# The audit checkpoints file (JSON lines with "at"): /metrics reports the age of its last line.
CLOSEOUT_AUDIT_CHECKPOINTS = Path(
    os.environ.get("CLOSEOUT_AUDIT_CHECKPOINTS", VAR_DIR / "audit-checkpoints.jsonl")
)

# Company (functional) currency: document amounts are also kept converted into it.
CLOSEOUT_COMPANY_CURRENCY = os.environ.get("CLOSEOUT_COMPANY_CURRENCY", "CNY")
# The rate table (core.ExchangeRate) a document in another currency than its company's base
# currency takes its rate from, at its document date, when the ERP sends no rate.
CLOSEOUT_BOOK_RATE_TABLE = os.environ.get("CLOSEOUT_BOOK_RATE_TABLE", "BOOK")

# E-mail (S10): SMTP when EMAIL_HOST is set, otherwise each mail is written as a file under
# var/mail (the embedded default has no mail server; the files show what would be sent).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
_email_port = os.environ.get("EMAIL_PORT", "25")
if not _email_port.strip().isdigit():
    raise ImproperlyConfigured(f"EMAIL_PORT must be a port number, got {_email_port!r}")
EMAIL_PORT = int(_email_port)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "closeout@localhost")
# Where links in e-mails point (e.g. https://closeout.example.com); empty keeps them relative.
CLOSEOUT_BASE_URL = os.environ.get("CLOSEOUT_BASE_URL", "")
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)

# Logs: one JSON object per line (time, level, logger, message, request_id, user, path,
# status, duration); CLOSEOUT_LOG_FORMAT=text for plain lines. Each HTTP request writes one
# line on the "closeout.request" logger (CLOSEOUT_REQUEST_LOG_LEVEL=WARNING silences it).
_log_format = os.environ.get("CLOSEOUT_LOG_FORMAT", "json")
if _log_format not in {"json", "text"}:
    raise ImproperlyConfigured(f"CLOSEOUT_LOG_FORMAT must be json or text, got {_log_format!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "closeout.core.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": _log_format}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "closeout.request": {"level": os.environ.get("CLOSEOUT_REQUEST_LOG_LEVEL", "INFO")},
    },
}

# Background work (Celery). Empty broker: tasks run inside this process (the embedded default).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CLOSEOUT_QUEUE", "closeout")
# A broker that does not answer must not hold a request for long: connect within this many
# seconds, retry a publish twice, then give up (a batch job keeps its tasks to send; see
# batches.services). CLOSEOUT_BROKER_TIMEOUT in seconds.
_BROKER_TIMEOUT = float(os.environ.get("CLOSEOUT_BROKER_TIMEOUT", "4"))
CELERY_BROKER_CONNECTION_TIMEOUT = _BROKER_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 600,
    "socket_connect_timeout": _BROKER_TIMEOUT,
    "socket_timeout": max(_BROKER_TIMEOUT, 10.0),
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": int(os.environ.get("CLOSEOUT_BROKER_PUBLISH_RETRIES", "2")),
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TIMEZONE = TIME_ZONE
# Run background tasks synchronously after commit (tests) instead of in a thread.
CLOSEOUT_TASKS_INLINE = _env_bool("CLOSEOUT_TASKS_INLINE", False)
# A batch run that loses its database connection is retried this many times, the first after
# CLOSEOUT_BATCH_RETRY_BACKOFF seconds, doubling up to a minute; then the job is failed.
CLOSEOUT_BATCH_RETRIES = int(os.environ.get("CLOSEOUT_BATCH_RETRIES", "5"))
CLOSEOUT_BATCH_RETRY_BACKOFF = float(os.environ.get("CLOSEOUT_BATCH_RETRY_BACKOFF", "2"))
CELERY_BEAT_SCHEDULE = {
    # One sweep task per document type (closing.tasks fans out over the one list of types).
    "sweep": {"task": "closeout.sweep_each_type", "schedule": 3600.0},
    "grants-expire": {"task": "closeout.grants_expire", "schedule": 900.0},
    "approvals-overdue": {"task": "closeout.approvals_overdue", "schedule": 3600.0},
    "alerts": {"task": "closeout.alerts", "schedule": 86400.0},
    "webhooks-retry": {"task": "closeout.webhooks_retry", "schedule": 60.0},
    "batches-send": {"task": "closeout.batch_dispatch_pending", "schedule": 60.0},
    "archive": {"task": "closeout.archive", "schedule": 86400.0},
    "diagnostics": {"task": "closeout.diagnostics", "schedule": 86400.0},
    "audit-checkpoint": {"task": "closeout.audit_checkpoint", "schedule": 3600.0},
    "backup": {
        "task": "closeout.backup",
        "schedule": float(os.environ.get("CLOSEOUT_BACKUP_EVERY_SECONDS", "86400")),
    },
}
# Task modules outside the `tasks` modules that autodiscovery imports.
CELERY_IMPORTS = ("closeout.reports.tasks_archive", "closeout.ops.tasks")
# Consistency checks: a reopened document not closed again after this many days is reported.
CLOSEOUT_REOPEN_STALE_DAYS = int(os.environ.get("CLOSEOUT_REOPEN_STALE_DAYS", "30"))

# Audit chain (S13). Events are sealed with HMAC-SHA-256 under a key that never lives in the
# database: CLOSEOUT_AUDIT_KEY=ID:SECRET[,ID:SECRET…] (the first seals new events; the others
# verify what they sealed), or else the key file, created with mode 0600 on first use.
CLOSEOUT_AUDIT_KEY = os.environ.get("CLOSEOUT_AUDIT_KEY", "")
CLOSEOUT_AUDIT_KEY_FILE = Path(
    os.environ.get("CLOSEOUT_AUDIT_KEY_FILE", VAR_DIR / "audit-keys.json")
)
# Checkpoints of the chain's head, written outside the database every hour (beat, or
# `closeout audit checkpoint` from cron without a broker) and after every batch: appended to
# this file, and also POSTed to the URL and mailed to the addresses (comma-separated) if set.
CLOSEOUT_AUDIT_CHECKPOINT_FILE = Path(
    os.environ.get("CLOSEOUT_AUDIT_CHECKPOINT_FILE", VAR_DIR / "audit-checkpoints.jsonl")
)
# Backups (备份, closeout.ops.backup): the scheduled ones (beat, daily by default) and those
# taken before a batch job of more than CLOSEOUT_BACKUP_BEFORE_BATCH_OVER documents (0 = never;
# on by default on SQLite, where a copy of the file is quick) go to this folder, which keeps
# the newest CLOSEOUT_BACKUP_KEEP of them (each with its manifest).
CLOSEOUT_BACKUP_DIR = Path(os.environ.get("CLOSEOUT_BACKUP_DIR", VAR_DIR / "backups"))
CLOSEOUT_BACKUP_KEEP = int(os.environ.get("CLOSEOUT_BACKUP_KEEP", "7"))
CLOSEOUT_BACKUP_BEFORE_BATCH_OVER = int(
    os.environ.get(
        "CLOSEOUT_BACKUP_BEFORE_BATCH_OVER",
        "1000" if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else "0",
    )
)
CLOSEOUT_AUDIT_CHECKPOINT_URL = os.environ.get("CLOSEOUT_AUDIT_CHECKPOINT_URL", "")
CLOSEOUT_AUDIT_CHECKPOINT_EMAIL = [
    a.strip() for a in os.environ.get("CLOSEOUT_AUDIT_CHECKPOINT_EMAIL", "").split(",") if a.strip()
]
