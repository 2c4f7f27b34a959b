"""The admin pages of the notification models, and the delivery log's "retry now" action."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from closeout.notifications.models import WebhookDelivery, WebhookEndpoint
from closeout.notifications.services import notify
from tests.notifications.conftest import make_user
from tests.notifications.test_inbox import SUBMITTED

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", ["notification", "preference", "webhookendpoint", "webhookdelivery"]
)
def test_changelists_render(admin_client: Client, model: str) -> None:
    notify(recipients=[make_user("chen")], kind="request_submitted", context=SUBMITTED)
    response = admin_client.get(f"/admin/notifications/{model}/")
    assert response.status_code == 200


def test_retry_now_action(admin_client: Client, receiver_factory: Any) -> None:
    receiver = receiver_factory()
    endpoint = WebhookEndpoint.objects.create(name="erp", url=receiver.url, secret=receiver.secret)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="request.approved",
        payload={},
        next_attempt_at=timezone.now() + timedelta(minutes=10),
    )
    response = admin_client.post(
        "/admin/notifications/webhookdelivery/",
        {"action": "retry_now", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 attempted, 1 delivered" in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert len(receiver.posts) == 1 and receiver.posts[0].signature_ok
