"""Real servers for the notification tests: an SMTP server (aiosmtpd) and webhook receivers
(http.server), all bound to 127.0.0.1 on free ports, in threads of the test process."""

import email
import email.policy
import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import User
from pytest_django import Settings


@pytest.fixture(autouse=True)
def _receivers_on_this_machine_allowed(settings: Settings) -> None:
    """The test receivers listen on 127.0.0.1, which webhooks refuse unless the allow-list
    names it (tests/notifications/test_webhook_urls.py proves the refusal)."""
    settings.CLOSEOUT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP -----------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # Python folds a long encoded subject onto a continuation line ("Subject: \n =?utf-8?…");
        # unfolding keeps that line's leading space, which is not part of the text.
        return str(self.message["Subject"]).strip()

    @property
    def text(self) -> str:
        return str(self.message.get_content())


class MailRecorder:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings: Settings) -> Iterator[MailRecorder]:
    """A real SMTP server on 127.0.0.1; Django's SMTP backend is pointed at it."""
    recorder = MailRecorder()
    port = free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, server_hostname="smtp.closeout.test"
    )
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "closeout@test.example"
    try:
        yield recorder
    finally:
        controller.stop()


# --- webhook receivers ------------------------------------------------------------------------


@dataclass
class ReceivedPost:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    """A webhook receiver that checks the signature on its own (hashlib/hmac, not closeout's
    verify function) and answers with the scripted statuses, then 200."""

    secret: str
    statuses: list[int] = field(default_factory=list)
    posts: list[ReceivedPost] = field(default_factory=list)
    hold: threading.Event | None = None  # when set up, each request waits for it (timeouts)
    url: str = ""

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        stamp = headers.get("X-Closeout-Timestamp", "")
        expected = hmac.new(
            self.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(headers.get("X-Closeout-Signature", ""), f"v1={expected}")


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k: v for k, v in self.headers.items()}
            receiver.posts.append(ReceivedPost(headers, body, receiver.verify(headers, body)))
            if receiver.hold is not None:
                receiver.hold.wait(timeout=10)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            payload = b"ok" if status < 300 else b"receiver says no"
            try:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread, Receiver]] = []

    def start(secret: str = "s3cret", statuses: list[int] | None = None) -> Receiver:  # noqa: S107
        receiver = Receiver(secret=secret, statuses=list(statuses or []))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/closeout"
        servers.append((server, thread, receiver))
        return receiver

    yield start
    for server, thread, receiver in servers:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- people -----------------------------------------------------------------------------------


def make_user(username: str, email_address: str = "", **extra: Any) -> User:
    return User.objects.create_user(username=username, email=email_address, **extra)
