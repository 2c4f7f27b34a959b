"""Two requests with the same Idempotency-Key at the same moment (PostgreSQL, two
connections): one runs, the other is told it is in progress or gets the replay; the request
is submitted once."""

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from closeout.api.services import api_token_create
from closeout.approvals.models import CloseRequest
from tests.approvals.conftest import make_route, short_po
from tests.factories import PO, org_tree, user_with_role

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_same_key_racing_submits_once(settings: Any) -> None:
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000
    org = org_tree()
    make_route("one step", doc_type=PO)
    document = short_po(org.dept_a)
    user = user_with_role("racer", "operator", org.company)
    token = api_token_create(actor=None, user=user).raw
    url = f"/api/documents/purchase_order/{document.number}/close-requests"
    body = '{"reason": "short_delivery_accepted", "remark": "race"}'
    barrier = threading.Barrier(2)
    answers: list[tuple[int, bytes]] = []

    def submit() -> None:
        try:
            barrier.wait()
            response = Client().post(
                url,
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "race-1"},
            )
            answers.append((response.status_code, response.content))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses in ([201, 201], [201, 409])
    if statuses == [201, 201]:
        assert answers[0][1] == answers[1][1]
    assert CloseRequest.objects.filter(document=document).count() == 1
