"""Running background work: on Celery workers when a broker is configured, otherwise inside
this process (the embedded default), always only after the current transaction commits."""

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext_noop

from closeout.core.errors import Message

log = logging.getLogger(__name__)


def broker_configured() -> bool:
    return bool(getattr(settings, "CELERY_BROKER_URL", ""))


def _run_in_thread(fn: Callable[..., Any], name: str, args: tuple[Any, ...]) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("background task %s%r failed", name, args)
    finally:
        # This thread's own database connection.
        connection.close()


def run_in_process(fn: Callable[..., Any], *args: Any, name: str = "") -> None:
    """Run `fn(*args)` in this process, now: inline when CLOSEOUT_TASKS_INLINE is set (tests,
    `batch run` without a broker), else in a thread of its own, so progress can be watched."""
    if getattr(settings, "CLOSEOUT_TASKS_INLINE", False):
        fn(*args)
    else:
        label = name or getattr(fn, "__name__", "task")
        threading.Thread(target=_run_in_thread, args=(fn, label, args), daemon=True).start()


def send_task(task: Any, *args: Any) -> None:
    """Send a Celery task to the broker now; raises when the broker does not answer (kombu's
    OperationalError, after CELERY_BROKER_CONNECTION_TIMEOUT and the publish retries)."""
    from closeout.celery import app

    app.send_task(task.name, args=args)


def broker_error_words(exc: BaseException) -> Message:
    """Why a task was not sent, in both languages (the broker's own text inside)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return Message(gettext_noop("the task broker does not answer (%(error)s)"), error=text)


def describe_broker_error(exc: BaseException) -> str:
    return broker_error_words(exc).en


def enqueue(task: Any, *args: Any) -> None:
    """Queue a Celery task after commit. Without a broker it runs in a thread of this process
    (or inline when CLOSEOUT_TASKS_INLINE is set, as in tests), so progress can be watched.
    A broker that does not answer is logged, never raised into the request that committed:
    work that must not be lost keeps its own outbox (batch jobs: batches.services)."""

    def start() -> None:
        if broker_configured():
            try:
                send_task(task, *args)
            except Exception as exc:
                log.error("task %s%r not sent: %s", task.name, args, describe_broker_error(exc))
        else:
            run_in_process(task.run, *args, name=task.name)

    transaction.on_commit(start)
