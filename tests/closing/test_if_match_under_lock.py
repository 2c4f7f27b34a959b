"""An API caller's If-Match is compared with the document read under its row lock, not with
a copy read before waiting for the lock: a close that waited behind a change must see that
change and answer 412 rather than close a document its caller never saw (PostgreSQL)."""

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import F

from closeout.closing.services import document_close
from closeout.core.errors import StaleVersion
from closeout.documents.models import CloseState, Document
from tests.factories import PO, lenient, make_document, org_tree, user_with_role

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def test_a_close_that_waited_for_the_lock_sees_the_version_it_waited_for() -> None:
    org = org_tree()
    lenient(PO)
    clerk = user_with_role("clerk", "supervisor", org.company)
    document = make_document(PO, org.team_a1)
    read_version = document.version
    outcome: dict[str, Any] = {}

    def close_with_if_match() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            outcome["pid"] = cursor.fetchone()[0]
        try:
            outcome["result"] = document_close(
                actor=clerk,
                document=document,
                reason_code="completed",
                remark="all received",
                expected_version=read_version,
            )
        except StaleVersion as error:
            outcome["result"] = error
        finally:
            connection.close()

    closer = threading.Thread(target=close_with_if_match)
    with transaction.atomic():
        # Someone else changes the document and holds its lock while the close arrives.
        Document.objects.select_for_update(no_key=True).get(pk=document.pk)
        Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
        closer.start()
        for _ in range(600):  # until the close waits for the row lock (at most 60 s)
            if "pid" in outcome and _waiting_for_a_lock(outcome["pid"]):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the close never waited for the document's lock")
    closer.join(timeout=60)

    assert isinstance(outcome["result"], StaleVersion), outcome["result"]
    assert outcome["result"].details["version"] == read_version + 1
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
