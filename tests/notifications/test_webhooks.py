"""Outgoing webhooks: signed by HMAC, checked by an independent receiver; outbox written in the
caller's transaction and posted only after commit; retries with exponential backoff; a log."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from closeout.notifications.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from closeout.notifications.webhooks import (
    WEBHOOK_MAX_ATTEMPTS,
    webhook_backoff,
    webhook_deliver,
    webhook_deliver_due,
    webhook_emit,
    webhook_signature_verify,
)
from tests.notifications.conftest import Receiver, free_port

PAYLOAD: dict[str, Any] = {
    "request_id": 41,
    "document": {"doc_type": "purchase_order", "number": "PO-7", "org_unit": "HQ"},
    "open_value": Decimal("1234.50"),
    "reason": "供应商停产",
}


def endpoint_for(receiver: Receiver, name: str = "erp", events: list[str] | None = None) -> Any:
    return WebhookEndpoint.objects.create(
        name=name, url=receiver.url, secret=receiver.secret, events=events or []
    )


def emit_and_commit(capture: Any, event: str = "request.approved") -> WebhookDelivery:
    with capture(execute=True):
        (delivery,) = webhook_emit(event=event, payload=PAYLOAD)
    delivery.refresh_from_db()
    return delivery


committing = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@committing
def test_delivered_after_commit_signed_and_verified_by_the_receiver(
    receiver_factory: Any,
) -> None:
    receiver = receiver_factory(secret="whsec-erp-一号")
    endpoint_for(receiver)
    with transaction.atomic():
        (delivery,) = webhook_emit(event="request.approved", payload=PAYLOAD)
        assert receiver.posts == [], "nothing may be posted before the commit"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        1,
        200,
    )
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    (post,) = receiver.posts
    assert post.signature_ok, "the receiver's own HMAC check failed"
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["X-Closeout-Event"] == "request.approved"
    assert post.headers["X-Closeout-Delivery"] == str(delivery.pk)
    assert abs(int(post.headers["X-Closeout-Timestamp"]) - timezone.now().timestamp()) < 600
    body = json.loads(post.body.decode("utf-8"))
    assert body == {
        "id": delivery.pk,
        "event": "request.approved",
        "created_at": delivery.created_at.isoformat(),
        "data": {
            "document": {"doc_type": "purchase_order", "number": "PO-7", "org_unit": "HQ"},
            "open_value": "1234.50",
            "reason": "供应商停产",
            "request_id": 41,
        },
    }
    # Sorted keys, UTF-8 text (not \u escapes), compact: the exact bytes that were signed.
    assert post.body == json.dumps(
        body, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


@committing
def test_nothing_is_posted_or_kept_when_the_transaction_rolls_back(receiver_factory: Any) -> None:
    receiver = receiver_factory()
    endpoint_for(receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_emit(event="request.approved", payload=PAYLOAD)
        raise RuntimeError("approval failed")
    assert receiver.posts == []
    assert not WebhookDelivery.objects.exists()
    assert webhook_deliver_due(now=timezone.now() + timedelta(days=1)) == 0
    assert receiver.posts == []


@pytest.mark.django_db
def test_retries_with_backoff_then_delivered(
    receiver_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = receiver_factory(statuses=[500, 500])
    endpoint_for(receiver)
    delivery = emit_and_commit(django_capture_on_commit_callbacks)
    # Attempt 1 (right after commit): 500 → wait 30 s.
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert "HTTP 500" in delivery.last_error and "receiver says no" in delivery.last_error
    assert delivery.last_attempt_at is not None and delivery.next_attempt_at is not None
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(seconds=30)
    t2 = delivery.next_attempt_at

    assert webhook_deliver_due(now=t2 - timedelta(seconds=1)) == 0  # not due yet
    assert webhook_deliver(delivery.pk, now=t2 - timedelta(seconds=1)).attempts == 1
    assert len(receiver.posts) == 1

    # Attempt 2 at t2: 500 again → wait 60 s.
    assert webhook_deliver_due(now=t2) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 2, 500)
    assert delivery.last_attempt_at == t2
    assert delivery.next_attempt_at == t2 + timedelta(seconds=60)
    t3 = delivery.next_attempt_at

    # Attempt 3 at t3: 200 → delivered.
    assert webhook_deliver_due(now=t3) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert delivery.last_error == "" and delivery.next_attempt_at is None
    assert delivery.last_attempt_at == t3

    # Every attempt carried the same delivery id and body, each correctly signed.
    assert len(receiver.posts) == 3
    assert {p.headers["X-Closeout-Delivery"] for p in receiver.posts} == {str(delivery.pk)}
    assert len({p.body for p in receiver.posts}) == 1
    assert all(p.signature_ok for p in receiver.posts)

    # Delivered rows are never sent again.
    assert webhook_deliver_due(now=t3 + timedelta(days=1)) == 0
    assert webhook_deliver(delivery.pk).status == DeliveryStatus.DELIVERED
    assert webhook_deliver(delivery.pk, now=t3 + timedelta(days=1)).attempts == 3
    assert len(receiver.posts) == 3


@pytest.mark.django_db
def test_a_receiver_that_is_down_fails_after_the_maximum_attempts(
    django_capture_on_commit_callbacks: Any,
) -> None:
    WebhookEndpoint.objects.create(
        name="down", url=f"http://127.0.0.1:{free_port()}/hook", secret="x", events=[]
    )
    delivery = emit_and_commit(django_capture_on_commit_callbacks)
    waits = []
    while delivery.status == DeliveryStatus.PENDING:
        assert delivery.last_status_code is None
        assert "ConnectionRefusedError" in delivery.last_error
        assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
        waits.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
        assert webhook_deliver_due(now=delivery.next_attempt_at) == 1
        delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == WEBHOOK_MAX_ATTEMPTS == 8
    assert waits == [30, 60, 120, 240, 480, 960, 1920]
    assert delivery.next_attempt_at is None and delivery.delivered_at is None
    assert webhook_deliver_due(now=timezone.now() + timedelta(days=30)) == 0
    assert webhook_deliver(delivery.pk).attempts == 8


def test_backoff_doubles_from_30_seconds_up_to_one_hour() -> None:
    expected = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert [webhook_backoff(n).total_seconds() for n in range(1, 10)] == expected


@pytest.mark.django_db
def test_redirect_and_timeout_count_as_failures(
    receiver_factory: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    moved = receiver_factory(statuses=[302])
    endpoint_for(moved, name="moved")
    delivery = emit_and_commit(django_capture_on_commit_callbacks)
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)
    assert len(moved.posts) == 1  # the redirect was not followed
    WebhookEndpoint.objects.filter(name="moved").update(active=False)

    settings.CLOSEOUT_WEBHOOK_TIMEOUT_SECONDS = 0.2
    slow = receiver_factory()
    slow.hold = threading.Event()  # answers only after the client has given up
    endpoint_for(slow, name="slow")
    delivery = emit_and_commit(django_capture_on_commit_callbacks)
    slow.hold.set()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert "timed out" in delivery.last_error.lower()


@pytest.mark.django_db
def test_only_active_subscribed_endpoints_get_a_delivery(
    receiver_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = receiver_factory()
    endpoint_for(receiver, name="all")  # empty list: every event
    endpoint_for(receiver, name="approvals", events=["request.approved", "request.rejected"])
    endpoint_for(receiver, name="grants", events=["grant.expired"])
    off = endpoint_for(receiver, name="off")
    off.active = False
    off.save()
    with django_capture_on_commit_callbacks(execute=True):
        deliveries = webhook_emit(event="request.approved", payload={"request_id": 1})
    assert sorted(d.endpoint.name for d in deliveries) == ["all", "approvals"]
    assert len(receiver.posts) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_emit(event="sweep.finished", payload={}) != []
    with django_capture_on_commit_callbacks(execute=True):
        WebhookEndpoint.objects.update(active=False)
        assert webhook_emit(event="request.approved", payload={}) == []


@pytest.mark.django_db
def test_payload_must_be_exact_json() -> None:
    with pytest.raises(ValueError, match=r"float at payload\['qty'\]; pass a Decimal"):
        webhook_emit(event="x", payload={"qty": 1.5})
    with pytest.raises(ValueError, match=r"payload\['when'\] is a object"):
        webhook_emit(event="x", payload={"when": object()})
    with pytest.raises(ValueError, match="non-empty string"):
        webhook_emit(event=" ", payload={})


def _sign(secret: str, stamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def test_signature_verify_for_receivers() -> None:
    body = b'{"event":"x","id":1}'
    stamp = 1_700_000_000
    header = _sign("k", stamp, body)
    assert webhook_signature_verify("k", str(stamp), body, header, now=stamp + 10)
    assert webhook_signature_verify("k", stamp, body.decode(), header, now=stamp - 10)
    assert webhook_signature_verify("k", stamp, body, f"v0=abc, {header}", now=stamp)
    assert not webhook_signature_verify("other", stamp, body, header, now=stamp)
    assert not webhook_signature_verify("k", stamp, body + b" ", header, now=stamp)
    assert not webhook_signature_verify("k", stamp + 1, body, header, now=stamp)
    assert not webhook_signature_verify("k", stamp, body, header, now=stamp + 301)  # replay
    assert webhook_signature_verify(
        "k", stamp, body, header, tolerance_seconds=400, now=stamp + 301
    )
    assert not webhook_signature_verify("k", stamp, body, None, now=stamp)
    assert not webhook_signature_verify("k", "yesterday", body, header, now=stamp)


@pytest.mark.postgres_only
@committing
def test_two_workers_delivering_the_same_row_send_once(receiver_factory: Any) -> None:
    receiver = receiver_factory()
    endpoint = endpoint_for(receiver)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event="x", payload={}, next_attempt_at=timezone.now()
    )
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        from django.db import connection

        try:
            start.wait(timeout=5)
            webhook_deliver(delivery.pk)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert len(receiver.posts) == 1


@pytest.mark.django_db
def test_with_a_broker_configured_delivery_goes_to_a_worker_after_commit(
    receiver_factory: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    monkeypatch: Any,
) -> None:
    from closeout.celery import app

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    sent: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    receiver = receiver_factory()
    endpoint_for(receiver)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        webhook_emit(event="request.executed", payload={"request_id": 3})
    assert len(callbacks) == 1 and sent == [] and receiver.posts == []
    callbacks[0]()
    delivery = WebhookDelivery.objects.get()
    assert sent == [("closeout.webhook_deliver", (delivery.pk,))]
    # The worker's task body is the same delivery function.
    from closeout.notifications.tasks import webhook_deliver_task

    assert webhook_deliver_task.run(delivery.pk) == DeliveryStatus.DELIVERED
    assert [p.headers["X-Closeout-Event"] for p in receiver.posts] == ["request.executed"]


@pytest.mark.django_db
def test_force_retries_a_pending_row_before_its_time_but_never_a_finished_one(
    receiver_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = receiver_factory(statuses=[503])
    endpoint = endpoint_for(receiver)
    delivery = emit_and_commit(django_capture_on_commit_callbacks)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert webhook_deliver(delivery.pk).attempts == 1  # not due: nothing sent
    forced = webhook_deliver(delivery.pk, force=True)
    assert (forced.status, forced.attempts) == ("delivered", 2)
    assert webhook_deliver(delivery.pk, force=True).attempts == 2
    assert len(receiver.posts) == 2

    endpoint.active = False
    endpoint.save()
    late = WebhookDelivery.objects.create(
        endpoint=endpoint, event="x", payload={}, next_attempt_at=timezone.now()
    )
    late = webhook_deliver(late.pk)
    assert (late.status, late.attempts) == ("failed", 1)
    assert "endpoint 'erp' is not active" in late.last_error
    assert len(receiver.posts) == 2
