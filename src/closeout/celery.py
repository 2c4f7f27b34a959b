"""The Celery application: Redis as broker in production (CELERY_BROKER_URL)."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")

app = Celery("closeout")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)


@worker_ready.connect
def send_unsent_batches(**kwargs: Any) -> None:
    """A worker that starts sends the tasks of batch jobs whose start met no broker (it has
    just reached the broker itself): nothing waits for the scheduler's next round."""
    from closeout.batches.services import batch_dispatch_pending

    try:
        sent = batch_dispatch_pending()
    except Exception:
        log.exception("sending unsent batch jobs at worker start failed")
        return
    if sent:
        log.warning("sent the tasks of %d batch job(s) queued while the broker was away", sent)
