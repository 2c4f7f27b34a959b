"""E-mail goes through Django's SMTP backend to a real local SMTP server (aiosmtpd), after the
caller's transaction commits, in each recipient's language."""

import os
import subprocess
import sys
from typing import Any

import pytest
from django.db import transaction

from closeout.notifications.models import Notification
from closeout.notifications.services import notify, preference_set
from tests.notifications.conftest import MailRecorder, free_port, make_user
from tests.notifications.test_inbox import CONTEXTS, SUBMITTED

# Real commits: on_commit runs when the outer transaction really commits. serialized_rollback
# restores the seeded rows (roles, policies) after the flush, for the tests that follow.
committing = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@committing
def test_mail_is_sent_after_commit_in_each_recipients_language(
    smtp_server: MailRecorder,
) -> None:
    chen = make_user("chen", "chen@example.cn")
    smith = make_user("smith", "smith@example.com")
    preference_set(actor=smith, language="en")
    with transaction.atomic():
        notify(
            recipients=[chen, smith],
            kind="request_rejected",
            context=CONTEXTS["request_rejected"],
            link="/requests/41/",
        )
        assert smtp_server.mails == [], "nothing may be sent before the commit"
    by_rcpt = {mail.rcpt_tos[0]: mail for mail in smtp_server.mails}
    assert sorted(by_rcpt) == ["chen@example.cn", "smith@example.com"]
    zh, en = by_rcpt["chen@example.cn"], by_rcpt["smith@example.com"]
    assert zh.mail_from == en.mail_from == "closeout@test.example"
    assert zh.subject == "已驳回：采购订单 PO-2024-0007 的结案申请 #41"
    assert "li 在「主管 supervisor」节点驳回了" in zh.text and "意见：数量不符" in zh.text
    assert "/requests/41/" in zh.text and "关闭邮件通知" in zh.text
    assert en.subject == "Rejected: close request #41 for 采购订单 PO-2024-0007"
    assert "li rejected the request #41 to close" in en.text and "Comment: 数量不符" in en.text
    assert "turn these e-mails off" in en.text
    for note in Notification.objects.all():
        assert "email_sent_at" in note.data and "email_error" not in note.data


@committing
def test_nothing_is_sent_when_the_transaction_rolls_back(smtp_server: MailRecorder) -> None:
    chen = make_user("chen", "chen@example.cn")
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(recipients=[chen], kind="request_submitted", context=SUBMITTED)
        raise RuntimeError("the approval failed")
    assert smtp_server.mails == []
    assert not Notification.objects.exists()
    # The server does work: the same call, committed, arrives.
    notify(recipients=[chen], kind="request_submitted", context=SUBMITTED)
    assert [m.rcpt_tos for m in smtp_server.mails] == [["chen@example.cn"]]


@pytest.mark.django_db
def test_only_recipients_with_an_address_and_email_enabled_get_mail(
    smtp_server: MailRecorder, django_capture_on_commit_callbacks: Any
) -> None:
    wants = make_user("wants", "wants@example.cn")
    opted_out = make_user("opted_out", "out@example.cn")
    preference_set(actor=opted_out, email_enabled=False)
    no_address = make_user("no_address")
    inactive = make_user("inactive", "inactive@example.cn", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        notes = notify(
            recipients=[wants, opted_out, no_address, inactive],
            kind="auto_close_digest",
            context=CONTEXTS["auto_close_digest"],
        )
    assert len(notes) == 4  # everyone gets the in-app message
    assert [m.rcpt_tos for m in smtp_server.mails] == [["wants@example.cn"]]
    assert smtp_server.mails[0].subject == "自动结案汇总：已结案 127 张单据"


@pytest.mark.django_db
def test_a_mail_server_that_is_down_is_recorded_not_raised(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 2
    chen = make_user("chen", "chen@example.cn")
    with django_capture_on_commit_callbacks(execute=True):
        (note,) = notify(recipients=[chen], kind="request_submitted", context=SUBMITTED)
    note.refresh_from_db()
    assert "ConnectionRefusedError" in note.data["email_error"]
    assert "email_sent_at" not in note.data


@pytest.mark.django_db
def test_links_in_mail_point_at_the_site(
    smtp_server: MailRecorder, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CLOSEOUT_BASE_URL = "https://closeout.example.cn/"
    chen = make_user("chen", "chen@example.cn")
    with django_capture_on_commit_callbacks(execute=True):
        (note,) = notify(
            recipients=[chen], kind="request_submitted", context=SUBMITTED, link="/requests/41/"
        )
    assert note.link == "/requests/41/"  # in-app links stay relative
    assert "https://closeout.example.cn/requests/41/" in smtp_server.mails[0].text


def _email_settings(**env: str) -> list[str]:
    """EMAIL_BACKEND and EMAIL_PORT as settings.py computes them from this environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import closeout.settings as s; print(s.EMAIL_BACKEND); print(s.EMAIL_PORT)",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return [*result.stdout.split(), *result.stderr.strip().splitlines()[-1:]]


def test_email_settings_come_from_the_environment() -> None:
    assert _email_settings() == ["django.core.mail.backends.filebased.EmailBackend", "25"]
    assert _email_settings(EMAIL_HOST="smtp.example.cn", EMAIL_PORT="587") == [
        "django.core.mail.backends.smtp.EmailBackend",
        "587",
    ]
    (error,) = _email_settings(EMAIL_PORT="smtp")
    assert error.endswith("EMAIL_PORT must be a port number, got 'smtp'")
