"""Django settings for closeout, read from the environment (12-factor).

The defaults need nothing: SQLite under var/, no broker, console logging.
"""

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

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
# The embedded default runs on one machine for demos; production sets SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY", "closeout-embedded-default-not-for-production")
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
    "closeout.api",
    "closeout.web",
    "django_htmx",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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

# The cache holds API rate-limit windows, login throttles and queue tab counts. Set CACHE_URL
# (e.g. redis://127.0.0.1:6379/1) so every server process shares them; the embedded default
# keeps them per process.
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
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

SESSION_COOKIE_SECURE = not DEBUG and _env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Company (functional) currency: document amounts are also kept converted into it.
CLOSEOUT_COMPANY_CURRENCY = os.environ.get("CLOSEOUT_COMPANY_CURRENCY", "CNY")

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Background work (Celery). Empty broker: tasks run inside this process (the embedded default).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CLOSEOUT_QUEUE", "closeout")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_TIMEZONE = TIME_ZONE
# Run background tasks synchronously after commit (tests) instead of in a thread.
CLOSEOUT_TASKS_INLINE = _env_bool("CLOSEOUT_TASKS_INLINE", False)
CELERY_BEAT_SCHEDULE = {
    **{
        f"sweep-{doc_type}": {"task": "closeout.sweep", "schedule": 3600.0, "args": (doc_type,)}
        for doc_type in (
            "purchase_order",
            "sales_order",
            "stock_count",
            "receivable",
            "payable",
            "project_stage",
        )
    },
    "grants-expire": {"task": "closeout.grants_expire", "schedule": 900.0},
    "approvals-overdue": {"task": "closeout.approvals_overdue", "schedule": 3600.0},
    "alerts": {"task": "closeout.alerts", "schedule": 86400.0},
    "webhooks-retry": {"task": "closeout.webhooks_retry", "schedule": 60.0},
    "archive": {"task": "closeout.archive", "schedule": 86400.0},
    "diagnostics": {"task": "closeout.diagnostics", "schedule": 86400.0},
    "audit-checkpoint": {"task": "closeout.audit_checkpoint", "schedule": 3600.0},
}
# Task modules outside the `tasks` modules that autodiscovery imports.
CELERY_IMPORTS = ("closeout.reports.tasks_archive",)
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
CLOSEOUT_AUDIT_CHECKPOINT_URL = os.environ.get("CLOSEOUT_AUDIT_CHECKPOINT_URL", "")
CLOSEOUT_AUDIT_CHECKPOINT_EMAIL = [
    a.strip() for a in os.environ.get("CLOSEOUT_AUDIT_CHECKPOINT_EMAIL", "").split(",") if a.strip()
]
