"""Settings of the test run: closeout's own, with a SECRET_KEY made for this run, so no test
reads or writes the secret-key file of the developer's var/ directory."""

import os

from django.core.management.utils import get_random_secret_key

os.environ.setdefault("SECRET_KEY", get_random_secret_key())
# Subprocesses (the CLI, Celery workers) start from closeout's settings with the same key.
os.environ["DJANGO_SETTINGS_MODULE"] = "closeout.settings"

from closeout.settings import *  # noqa: F403
