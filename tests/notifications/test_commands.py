"""`closeout webhooks retry|log`."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from closeout.notifications.models import WebhookDelivery, WebhookEndpoint
from tests.notifications.conftest import free_port

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("webhooks", *args, stdout=out)
    return out.getvalue()


def test_retry_attempts_due_deliveries_and_log_shows_them() -> None:
    endpoint = WebhookEndpoint.objects.create(
        name="erp-down", url=f"http://127.0.0.1:{free_port()}/hook", secret="k"
    )
    due = WebhookDelivery.objects.create(
        endpoint=endpoint, event="request.approved", payload={}, next_attempt_at=timezone.now()
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="request.rejected",
        payload={},
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )
    assert run("retry") == "1 webhook deliveries attempted\n"
    due.refresh_from_db()
    assert due.attempts == 1 and "ConnectionRefusedError" in due.last_error
    log = run("log", "--status", "pending").splitlines()
    assert log[0].split() == [
        "id", "endpoint", "event", "status", "attempts", "last", "next", "attempt", "error",
    ]  # fmt: skip
    assert len(log) == 4
    assert any(line.startswith(f"{due.pk} ") and "erp-down" in line for line in log[2:])


def test_log_rejects_an_unknown_status() -> None:
    with pytest.raises(CommandError, match="webhook delivery status 'sent' is not one of"):
        run("log", "--status", "sent")
