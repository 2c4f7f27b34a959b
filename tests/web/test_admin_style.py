"""The Django admin wears the workbench's colours and links back to it."""

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client


@pytest.mark.django_db
def test_admin_is_branded_and_links_to_the_workbench(client: Client) -> None:
    admin = User.objects.create_superuser("style-admin", password="x-test-only")
    client.force_login(admin)
    page = client.get("/admin/").content.decode()
    assert "closeout 结案管理" in page
    # The colours come from a static file (the Content Security Policy forbids inline style).
    assert 'href="/static/web/admin.css"' in page
    stylesheet = finders.find("web/admin.css")
    assert isinstance(stylesheet, str)
    assert "--header-bg: #17324d" in Path(stylesheet).read_text(encoding="utf-8")
    assert 'href="/"' in page and "结案工作台" in page
