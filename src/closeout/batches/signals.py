"""Celery signal handlers of batch jobs, connected when the app starts (BatchesConfig.ready)."""

import logging
from typing import Any

from celery.signals import worker_ready

from closeout.batches.services import batch_dispatch_pending

log = logging.getLogger(__name__)


def send_unsent_batches(**kwargs: Any) -> None:
    """A worker that starts sends the tasks of batch jobs whose start met no broker (it has
    just reached the broker itself): nothing waits for the scheduler's next round."""
    try:
        sent = batch_dispatch_pending()
    except Exception:
        log.exception("sending unsent batch jobs at worker start failed")
        return
    if sent:
        log.warning("sent the tasks of %d batch job(s) queued while the broker was away", sent)


def connect() -> None:
    worker_ready.connect(send_unsent_batches, dispatch_uid="closeout.batches.send_unsent")
