"""A user's own notification settings on the notifications page: the language of messages and
the e-mail switch (notifications.services.preference_set, reachable from a page)."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from closeout.notifications.models import Preference
from closeout.notifications.selectors import email_enabled_for, user_language
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def text(response: Any) -> str:
    return str(response.content.decode())


def test_the_page_shows_the_current_settings_in_chinese(operator: User) -> None:
    page = text(signed_in(operator, "zh-hans").get("/notifications/"))
    assert "通知设置" in page and "同时通过邮件发送通知" in page
    assert '<option value="zh-hans" selected>' in page
    assert 'name="email_enabled" id="id_email_enabled" checked' in page


def test_saving_changes_the_language_and_the_email_switch(operator: User) -> None:
    client = signed_in(operator, "zh-hans")
    response = client.post("/notifications/", {"preferences": "1", "language": "en"})
    assert response.status_code == 302
    assert (user_language(operator), email_enabled_for(operator)) == ("en", False)
    page = text(client.get("/notifications/"))
    assert "通知设置已保存。" in page
    assert '<option value="en" selected>' in page
    client.post(
        "/notifications/", {"preferences": "1", "language": "zh-hans", "email_enabled": "on"}
    )
    assert (user_language(operator), email_enabled_for(operator)) == ("zh-hans", True)


def test_an_unknown_language_is_refused_and_nothing_changes(operator: User) -> None:
    client = signed_in(operator, "zh-hans")
    response = client.post("/notifications/", {"preferences": "1", "language": "fr"})
    assert response.status_code == 400
    assert "通知设置未保存。" in text(response)
    assert not Preference.objects.filter(user=operator).exists()
