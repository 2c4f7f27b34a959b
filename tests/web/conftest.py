"""Shared setup for the workbench tests: signed-in clients per role and a few documents."""

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from closeout.documents.models import Document
from tests.factories import PO, Org, ready_document, user_with_role


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Login throttling counts in the cache: every test starts with none."""
    cache.clear()


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


@pytest.fixture
def auditor(org: Org) -> User:
    return user_with_role("aud", "auditor", org.company)


@pytest.fixture
def outsider(org: Org) -> User:
    """Sees documents of department B only."""
    return user_with_role("out", "operator", org.dept_b)


@pytest.fixture
def ready_po(org: Org) -> Document:
    return ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
