"""Running background work: on Celery workers when a broker is configured, otherwise inside
this process (the embedded default), always only after the current transaction commits."""

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import connection, transaction

log = logging.getLogger(__name__)


def broker_configured() -> bool:
    return bool(getattr(settings, "CELERY_BROKER_URL", ""))


def _run_in_thread(task: Any, args: tuple[Any, ...]) -> None:
    try:
        task.run(*args)
    except Exception:
        log.exception("background task %s%r failed", task.name, args)
    finally:
        # This thread's own database connection.
        connection.close()


def enqueue(task: Any, *args: Any) -> None:
    """Queue a Celery task after commit. Without a broker it runs in a thread of this process
    (or inline when CLOSEOUT_TASKS_INLINE is set, as in tests), so progress can be watched."""

    def start() -> None:
        if broker_configured():
            from closeout.celery import app

            app.send_task(task.name, args=args)
        elif getattr(settings, "CLOSEOUT_TASKS_INLINE", False):
            task.run(*args)
        else:
            threading.Thread(target=_run_in_thread, args=(task, args), daemon=True).start()

    transaction.on_commit(start)
