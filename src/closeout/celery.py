"""The Celery application: Redis as broker in production (CELERY_BROKER_URL)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")

app = Celery("closeout")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
