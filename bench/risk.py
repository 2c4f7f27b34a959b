"""Risk-warning benchmark (S24): server time of the close checklist with its risk warnings on
PostgreSQL, against the checklist alone, with a year of manual-close history.

    .venv/bin/python bench/risk.py [--documents 200000] [--lines 3] [--samples 30] [--keep]

Creates the database closeout_risk_bench (BENCH_POSTGRES, default
postgres://postgres@127.0.0.1:5432), generates purchase orders with gen-data (200 partners,
1,000 items), then marks 70% of them as closed by hand over the last 365 days with what each
line released (SQL UPDATE: history for the risk selectors, not a test of closing) and writes
one close audit event per closed document for one user (the close-rate history). It then times
`close_checklist_for` and `close_checklist_with_risks` on open documents of the busiest
partner: median and p95, and the number of queries.
"""

import argparse
import os
import statistics
import subprocess
import time

# The same server, admin connection and console script as the work-queue benchmark.
from queue_page import CLOSEOUT, SERVER, _admin

DB = "closeout_risk_bench"


HISTORY_SQL = [
    # 70% of the documents closed by hand, spread over the last year.
    """
    UPDATE documents_line l SET close_state = 'closed', close_kind = 'manual',
        close_reason = 'short_delivery_accepted', closed_by_id = %(user)s, closed_in = 1,
        closed_at = now() - make_interval(days => ((l.document_id %% 365) + 1)::int),
        released_qty = greatest(l.planned_qty - l.fulfilled_qty, 0),
        released_value = greatest(l.planned_qty - l.fulfilled_qty, 0) * l.unit_price,
        released_value_company = greatest(l.planned_qty - l.fulfilled_qty, 0) * l.unit_price
    WHERE l.document_id %% 10 < 7
    """,
    """
    UPDATE documents_document d SET close_state = 'closed', close_kind = 'manual',
        close_seq = 1, closed_by_id = %(user)s,
        closed_at = now() - make_interval(days => ((d.id %% 365) + 1)::int)
    WHERE d.id %% 10 < 7
    """,
    # One close audit event per closed document, by the one user (hashes are not verified).
    """
    INSERT INTO audit_auditevent (seq, at, actor_id, actor_name, action, object_type,
        object_id, object_repr, data, reason, request_id, prev_hash, hash)
    SELECT 1000000000 + d.id, d.closed_at, %(user)s, 'bench', 201, 'document', d.id::text,
        d.number, '{}'::jsonb, 'short_delivery_accepted', '', '', ''
    FROM documents_document d WHERE d.id %% 10 < 7
    """,
    "VACUUM ANALYZE",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    _admin(f"DROP DATABASE IF EXISTS {DB}")
    _admin(f"CREATE DATABASE {DB}")
    try:
        subprocess.run([str(CLOSEOUT), "migrate", "-v", "0"], check=True)
        started = time.perf_counter()
        subprocess.run(
            [
                str(CLOSEOUT),
                "gen-data",
                "--documents",
                str(args.documents),
                "--lines-per-document",
                str(args.lines),
                "--type",
                "purchase_order",
            ],
            check=True,
        )
        print(f"generated in {time.perf_counter() - started:.1f} s")
        _measure(args.samples)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _admin(f"DROP DATABASE IF EXISTS {DB}")


def _measure(samples: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from closeout.closing.selectors import close_checklist_for, close_checklist_with_risks
    from closeout.documents.models import Document

    user = User.objects.create_user(username="bench-risk", password=None)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in HISTORY_SQL:
            cursor.execute(sql, {"user": user.pk} if "%(user)s" in sql else None)
    print(f"history written in {time.perf_counter() - started:.1f} s")
    busiest = (
        Document.objects.values("partner_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("partner_id", "n")
        .first()
    )
    assert busiest is not None  # noqa: S101
    partner_id, count = busiest
    documents = list(
        Document.objects.select_related("partner", "org_unit").filter(
            partner_id=partner_id, close_state="open"
        )[:samples]
    )
    print(f"busiest partner: {count} documents, {len(documents)} open ones timed")
    for name, run in (
        ("close_checklist_for", lambda d: close_checklist_for(d)),
        (
            "close_checklist_with_risks",
            lambda d: close_checklist_with_risks(d, actor=user, reason_code="completed"),
        ),
    ):
        times, flagged, queries = [], 0, 0
        for document in documents:
            with CaptureQueriesContext(connection) as captured:
                t0 = time.perf_counter()
                checklist = run(document)
                times.append((time.perf_counter() - t0) * 1000)
            queries = max(queries, len(captured))
            flagged += len(checklist.risk_flags)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(
            f"{name:28s} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  "
            f"queries ≤ {queries}  risk flags {flagged}"
        )


if __name__ == "__main__":
    main()
