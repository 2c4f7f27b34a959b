"""A request that meets a database busy with other work answers 503 with Retry-After, in the
reader's language, and saves nothing; sent again once the lock is gone, it succeeds. On SQLite
the lock is real: another connection holds the write lock past the busy timeout."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from closeout.core.busy import database_busy
from closeout.documents.models import CloseState, Document
from tests.api.conftest import ApiFactory, error_of
from tests.factories import PO, Org, ready_document
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
sqlite_only = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's write lock")


@contextmanager
def write_lock_held() -> Iterator[None]:
    """Another connection holds the database's write lock; this thread's connection waits
    0.2 s for it (the embedded server waits 20 s), then gives up."""
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    options = connection.settings_dict["OPTIONS"]
    saved = options["timeout"]
    connection.close()
    options["timeout"] = 0.2
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        connection.close()
        options["timeout"] = saved


def _close_form() -> dict[str, str]:
    today = timezone.localdate().isoformat()
    return {"reason": "completed", "close_date": today, "submit_as": "direct"}


@sqlite_only
def test_a_page_write_meeting_a_held_lock_reads_busy_in_chinese(org: Org, operator: User) -> None:
    document = ready_document(PO, org.dept_a)
    client = signed_in(operator, "zh-hans")
    with write_lock_held():
        page = client.post(f"/documents/{document.pk}/close/", _close_form())
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "数据库正忙" in page.content.decode()
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN


@sqlite_only
def test_an_api_write_meeting_a_held_lock_is_503_and_succeeds_when_sent_again(
    api_for: ApiFactory, org: Org
) -> None:
    document = ready_document(PO, org.dept_a, number="BUSY-1")
    api = api_for("operator")
    path = "/api/documents/purchase_order/BUSY-1/close"
    with write_lock_held():
        busy = api.post(path, {"reason": "completed"})
    assert busy.status_code == 503 and busy["Retry-After"] == "5"
    assert error_of(busy)["code"] == "database_busy"
    assert "数据库正忙" in error_of(busy)["details"]["message_zh"]
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
    again = api.post(path, {"reason": "completed"})
    assert again.status_code == 200, again.content
    assert Document.objects.get(pk=document.pk).close_state == CloseState.CLOSED


@pytest.mark.postgres_only
def test_a_postgresql_lock_wait_that_gives_up_is_a_busy_database(org: Org) -> None:
    document = ready_document(PO, org.dept_a)
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT 1 FROM documents_document WHERE id = %s FOR UPDATE", [document.pk]
            )
        with pytest.raises(OperationalError) as caught, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '100ms'")
            Document.objects.select_for_update().get(pk=document.pk)
    finally:
        holder.close()
    busy = database_busy(caught.value)
    assert busy is not None and busy.code == "database_busy" and busy.http_status == 503
    assert database_busy(OperationalError("no such table: x")) is None
