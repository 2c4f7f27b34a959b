"""Webhooks never reach this machine or the internal network unless the allow-list names the
host: checked at creation and again at delivery, after resolving the name (DNS may change)."""

import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from closeout.core.errors import InvalidInput
from closeout.notifications.models import DeliveryStatus, WebhookEndpoint
from closeout.notifications.webhook_endpoints import webhook_endpoint_create
from closeout.notifications.webhook_urls import webhook_url_check
from closeout.notifications.webhooks import webhook_emit
from tests.factories import Org, user_with_role

pytestmark = pytest.mark.django_db

REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.0.0.53:8080/hook",
    "http://localhost/hook",
    "http://2130706433/hook",  # 127.0.0.1 in decimal
    "http://0x7f000001/hook",  # in hexadecimal
    "http://0177.0.0.1/hook",  # in octal
    "http://127.1/hook",  # shortened
    "http://0/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[::ffff:a00:1]/hook",  # 10.0.0.1, mapped, in hex
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "http://[2002:c0a8:101::1]/hook",  # 6to4 of 192.168.1.1
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # shared address space (carrier NAT)
    "http://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",  # unique local
    "http://224.0.0.1/hook",  # multicast
    "http://[ff02::1]/hook",
    "http://240.0.0.1/hook",  # reserved
    "http://255.255.255.255/hook",
    "https://192.0.2.10/hook",  # documentation range: not global
]

ACCEPTED = [
    "https://93.184.216.34/hook",
    "http://8.8.8.8:8080/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://erp.example.com/hook",  # does not resolve here: checked again at delivery
]


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """resolve(name, address): make the system resolver answer `address` for `name`."""
    real = socket.getaddrinfo
    answers: dict[str, str] = {}

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower() in answers:
            address = answers[host.lower()]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, int(port or 0), 0, 0) if ":" in address else (address, int(port))
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return lambda name, address: answers.__setitem__(name.lower(), address)


@pytest.fixture(autouse=True)
def _no_allow_list(settings: Settings) -> None:
    settings.CLOSEOUT_WEBHOOK_ALLOWED_HOSTS = []


@pytest.mark.parametrize("url", REFUSED)
def test_internal_addresses_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        webhook_url_check(url)
    assert caught.value.details["field"] == "url"
    assert "CLOSEOUT_WEBHOOK_ALLOWED_HOSTS" in caught.value.message


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_addresses_and_unresolved_names_are_accepted(url: str) -> None:
    webhook_url_check(url)


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://a/"])
def test_only_http_and_https(url: str, settings: Settings) -> None:
    settings.CLOSEOUT_WEBHOOK_ALLOWED_HOSTS = ["93.184.216.34", "a"]
    with pytest.raises(InvalidInput, match="not http"):
        webhook_url_check(url)


def test_a_name_is_refused_by_the_address_it_resolves_to(resolve: Any) -> None:
    resolve("hooks.example.net", "10.20.30.40")
    with pytest.raises(InvalidInput, match=r"10\.20\.30\.40, a private address"):
        webhook_url_check("https://hooks.example.net/in")
    resolve("hooks.example.net", "93.184.216.34")
    webhook_url_check("https://hooks.example.net/in")


def test_the_allow_list_names_hosts_addresses_and_networks(
    settings: Settings, resolve: Any
) -> None:
    settings.CLOSEOUT_WEBHOOK_ALLOWED_HOSTS = ["erp.internal", "10.1.2.0/24", "::1"]
    resolve("erp.internal", "10.9.9.9")
    webhook_url_check("http://erp.internal:8080/hook")
    webhook_url_check("http://10.1.2.3/hook")
    webhook_url_check("http://[::1]/hook")
    for url in ("http://10.1.3.3/hook", "http://127.0.0.1/hook", "http://erp2.internal.x/"):
        resolve("erp2.internal.x", "10.9.9.9")
        with pytest.raises(InvalidInput):
            webhook_url_check(url)


def test_the_api_refuses_an_internal_url_and_writes_nothing(org: Org) -> None:
    manager = user_with_role("hooks-admin", "admin", org.company)
    with pytest.raises(InvalidInput, match="loopback"):
        webhook_endpoint_create(
            actor=manager, name="inside", url="http://127.0.0.1:6379/", events=[]
        )
    assert not WebhookEndpoint.objects.exists()


def _deliver(capture: Any) -> Any:
    with capture(execute=True):
        (delivery,) = webhook_emit(event="request.approved", payload={"id": 1})
    delivery.refresh_from_db()
    return delivery


def test_delivery_checks_the_address_again_when_dns_changes(
    org: Org,
    receiver_factory: Any,
    resolve: Any,
    settings: Settings,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Created while the name pointed outside; at delivery it points at this machine: refused,
    nothing sent. Allowed by the setting: delivered, to the very address that was checked."""
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    receiver = receiver_factory()
    port = receiver.url.split(":")[2].split("/")[0]
    manager: User = user_with_role("hooks-admin", "admin", org.company)
    resolve("hooks.example.net", "93.184.216.34")
    endpoint = webhook_endpoint_create(
        actor=manager, name="erp", url=f"http://hooks.example.net:{port}/hook", events=[]
    )
    endpoint.secret = receiver.secret
    endpoint.save(update_fields=["secret"])
    resolve("hooks.example.net", "127.0.0.1")
    delivery = _deliver(django_capture_on_commit_callbacks)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert "127.0.0.1, a loopback address" in delivery.last_error
    assert receiver.posts == []

    settings.CLOSEOUT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    delivery = _deliver(django_capture_on_commit_callbacks)
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 200)
    assert len(receiver.posts) == 1 and receiver.posts[0].signature_ok


def test_delivery_refuses_a_stored_internal_url(
    receiver_factory: Any, settings: Settings, django_capture_on_commit_callbacks: Any
) -> None:
    """A row written around the services (or before this check existed) is refused too."""
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    receiver = receiver_factory()
    WebhookEndpoint.objects.create(name="old", url=receiver.url, secret=receiver.secret)
    delivery = _deliver(django_capture_on_commit_callbacks)
    assert "loopback" in delivery.last_error and delivery.status == DeliveryStatus.PENDING
    assert receiver.posts == []
