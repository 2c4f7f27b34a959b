"""Two bulk posts at the same moment touching the same documents (PostgreSQL, two
connections): the documents are locked in id order, so neither waits on the other in a
circle; every event is stored once, applied once and audited once."""

import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from closeout.api.services import api_token_create
from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.documents.models import BusinessEvent, Line
from tests.api.test_events import ev
from tests.factories import PO, make_document, org_tree, user_with_role

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_concurrent_bulk_posts_lose_and_double_nothing(settings: Any) -> None:
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000
    org = org_tree()
    numbers = [f"RACE-{i}" for i in range(6)]
    for number in numbers:
        make_document(PO, org.dept_a, ((100, 5), (100, 5)), number=number)
    token = api_token_create(actor=None, user=user_with_role("racer", "integration", org.company))
    # Each side posts its own events and half of the other's, over the same documents, in
    # opposite orders.
    own = {
        side: [ev(n, f"{side}-{n}-{k}", line_no=k, quantity="1") for n in numbers for k in (1, 2)]
        for side in ("A", "B")
    }
    bodies = [own["A"] + own["B"][::2], list(reversed(own["B"] + own["A"][1::2]))]
    barrier = threading.Barrier(2)
    answers: list[tuple[int, Any]] = []

    def post(body: list[dict[str, object]]) -> None:
        try:
            barrier.wait()
            response = Client().post(
                "/api/events/bulk",
                json.dumps({"events": body}),
                content_type="application/json",
                headers={"Authorization": f"Bearer {token.raw}"},
            )
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [status for status, _ in answers] == [200, 200], answers
    outcomes = [r["outcome"] for _, body in answers for r in body["results"]]
    assert set(outcomes) <= {"applied", "duplicate"}
    total = len(own["A"]) + len(own["B"])
    assert outcomes.count("applied") == total
    assert outcomes.count("duplicate") == len(outcomes) - total
    assert BusinessEvent.objects.filter(document__number__in=numbers).count() == total
    for line in Line.objects.filter(document__number__in=numbers):
        assert line.fulfilled_qty == Decimal(2)  # one receipt of each side
    applied = AuditEvent.objects.filter(action=int(AuditAction.EVENT_APPLIED))
    assert applied.count() == total
    assert audit_chain_verify().intact
