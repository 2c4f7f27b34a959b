"""Celery entry points for webhook deliveries: take ids, re-read rows, safe to run twice."""

from celery import shared_task

from closeout.access.services import grants_expire
from closeout.notifications.services import notify
from closeout.notifications.webhooks import webhook_deliver, webhook_deliver_due


@shared_task(name="closeout.webhook_deliver")
def webhook_deliver_task(delivery_id: int) -> str:
    return webhook_deliver(delivery_id).status


@shared_task(name="closeout.webhooks_retry")
def webhooks_retry_task() -> int:
    return webhook_deliver_due()


@shared_task(name="closeout.grants_expire")
def grants_expire_task() -> dict[str, int]:
    """Record and announce the grants that ended (access.services.grants_expire)."""
    return grants_expire(notify=notify)
