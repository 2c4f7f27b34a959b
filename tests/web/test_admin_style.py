"""The Django admin wears the workbench's colours and links back to it."""

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.mark.django_db
def test_admin_is_branded_and_links_to_the_workbench(client: Client) -> None:
    admin = User.objects.create_superuser("style-admin", password="x-test-only")
    client.force_login(admin)
    page = client.get("/admin/").content.decode()
    assert "closeout 结案管理" in page
    assert "--header-bg: #17324d" in page
    assert 'href="/"' in page and "结案工作台" in page
