"""Settings of the test run: closeout's own, with a SECRET_KEY made for this run, so no test
reads or writes the secret-key file of the developer's var/ directory."""

import os

from django.core.management.utils import get_random_secret_key

os.environ.setdefault("SECRET_KEY", get_random_secret_key())
# Subprocesses (the CLI, Celery workers) start from closeout's settings with the same key.
os.environ["DJANGO_SETTINGS_MODULE"] = "closeout.settings"

from closeout.settings import *  # noqa: F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # The SQLite pass tests a database file, as the embedded default runs (WAL, busy timeout),
    # not Django's shared-cache in-memory database: there, a live server's request thread and a
    # batch thread lock each other's tables ("database table is locked") without waiting.
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.mkdtemp(prefix="closeout-test-"), "test.sqlite3")
    }
    # A test database need not survive a power cut: no fsync.
    DATABASES["default"]["OPTIONS"]["init_command"] = (  # noqa: F405
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
    )
