"""Every KPI equals the same figure computed directly in SQL (written here independently, per
database), for several filters and viewers; plus the known values of the built history."""

# The SQL below is assembled from fixed fragments in this file; every value is a parameter.
# ruff: noqa: S608

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from closeout.closing.sweep import sweep_run
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.core.models import OrgUnit
from closeout.reports.kpi_approvals import approval_steps
from closeout.reports.kpi_base import KpiFilter, ReportScope, percentile, report_scope
from closeout.reports.kpi_closes import (
    close_cycle_histogram,
    close_cycle_time,
    close_kind_share,
    reopen_rate,
)
from closeout.reports.kpi_open_value import backlog_by_age, released_by_partner, released_by_reason
from closeout.reports.kpis import kpi_report
from tests.factories import PO, SO, Org, user_with_role
from tests.reports.kpi_data import BASE, TODAY, KpiWorld, build_world

CLOSED = ("closed", "reopen_pending", "archived")


@pytest.fixture
def world(org: Org) -> KpiWorld:
    return build_world(org)


# --- the independent SQL ------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """The filter as SQL over documents `d` joined to organisation units `o`."""

    paths: tuple[str, ...]  # the viewer's report grants
    doc_type: str = ""
    org_path: str = ""
    start: date | None = None
    end: date | None = None  # inclusive

    def documents(self) -> tuple[str, list[Any]]:
        sql = "(" + " OR ".join("o.path LIKE %s" for _ in self.paths) + ")"
        params: list[Any] = [p + "%" for p in self.paths]
        if self.doc_type:
            sql += " AND d.doc_type = %s"
            params.append(self.doc_type)
        if self.org_path:
            sql += " AND o.path LIKE %s"
            params.append(self.org_path + "%")
        return sql, params

    def instants(self, column: str) -> tuple[str, list[Any]]:
        sql, params = "", []
        tz = timezone.get_current_timezone()
        if self.start:
            sql += f" AND {column} >= %s"
            params.append(_ts(datetime.combine(self.start, time.min, tz)))
        if self.end:
            sql += f" AND {column} < %s"
            params.append(_ts(datetime.combine(self.end + timedelta(days=1), time.min, tz)))
        return sql, params

    def dates(self, column: str) -> tuple[str, list[Any]]:
        sql, params = "", []
        if self.start:
            sql += f" AND {column} >= %s"
            params.append(self.start)
        if self.end:
            sql += f" AND {column} <= %s"
            params.append(self.end)
        return sql, params


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _ts(moment: datetime) -> Any:
    """A timestamp parameter as each database stores it (SQLite: UTC text)."""
    return moment if _pg() else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _days(later: str, earlier: str) -> str:
    if _pg():
        return f"EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0"
    return f"(julianday({later}) - julianday({earlier}))"


def fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def sql_cycle(where: Where, group: str) -> list[tuple[Any, ...]]:
    docs, params = where.documents()
    period, period_params = where.dates("d.close_date")
    inner = f"""
        SELECT {group} AS g, {_days("d.closed_at", "COALESCE(f.last_event, d.last_activity_at)")}
               AS days
        FROM documents_document d
        JOIN core_orgunit o ON o.id = d.org_unit_id
        LEFT JOIN auth_user u ON u.id = d.closed_by_id
        LEFT JOIN (SELECT e.document_id, MAX(e.occurred_at) AS last_event
              FROM documents_businessevent e JOIN documents_document d2 ON d2.id = e.document_id
              WHERE e.status = 'applied' AND e.occurred_at <= d2.closed_at
              GROUP BY e.document_id) f ON f.document_id = d.id
        WHERE d.close_state IN ('closed', 'reopen_pending', 'archived')
          AND COALESCE(f.last_event, d.last_activity_at) <= d.closed_at
          AND d.closed_at IS NOT NULL AND {docs} {period}"""
    if _pg():
        rows = fetch(
            f"""SELECT g, COUNT(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY days),
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY days)
                FROM ({inner}) t GROUP BY g ORDER BY g""",
            params + period_params,
        )
        return [(g, n, round(float(p50), 2), round(float(p90), 2)) for g, n, p50, p90 in rows]
    groups: dict[str, list[float]] = {}
    for g, days in fetch(inner, params + period_params):
        groups.setdefault(g, []).append(float(days))
    result = []
    for g in sorted(groups):
        values = groups[g]
        p90 = (
            values[0]
            if len(values) == 1
            else statistics.quantiles(values, n=10, method="inclusive")[-1]
        )
        result.append((g, len(values), round(statistics.median(values), 2), round(p90, 2)))
    return result


def sql_kind_share(where: Where) -> list[tuple[Any, ...]]:
    docs, params = where.documents()
    period, period_params = where.dates("d.close_date")
    month = "to_char(d.close_date, 'YYYY-MM')" if _pg() else "strftime('%%Y-%%m', d.close_date)"
    rows = fetch(
        f"""SELECT d.doc_type, {month} AS m,
                   SUM(CASE WHEN d.close_kind = 'auto' THEN 1 ELSE 0 END),
                   SUM(CASE WHEN d.close_kind = 'manual' THEN 1 ELSE 0 END)
            FROM documents_document d JOIN core_orgunit o ON o.id = d.org_unit_id
            WHERE d.close_state IN ('closed', 'reopen_pending', 'archived')
              AND d.close_date IS NOT NULL AND {docs} {period}
            GROUP BY d.doc_type, {month} ORDER BY d.doc_type, m""",
        params + period_params,
    )
    return [(t, m, int(a), int(b), round(int(a) / (int(a) + int(b)), 4)) for t, m, a, b in rows]


def _audit_docs(where: Where) -> tuple[str, list[Any]]:
    docs, params = where.documents()
    return (
        f"""object_type = 'document' AND object_id IN (
            SELECT CAST(d.id AS TEXT)
            FROM documents_document d JOIN core_orgunit o ON o.id = d.org_unit_id
            WHERE {docs})""",
        params,
    )


def sql_reopen(where: Where, by: str) -> list[tuple[Any, ...]]:
    scope, params = _audit_docs(where)
    period, period_params = where.instants("at")
    column = "actor_name" if by == "closed_by" else "reason"
    closes = dict(
        fetch(
            f"SELECT {column}, COUNT(*) FROM audit_auditevent WHERE action = 201 AND {scope} "
            f"{period} GROUP BY {column}",
            params + period_params,
        )
    )
    reopens = dict(
        fetch(
            f"""SELECT (SELECT c.{column} FROM audit_auditevent c
                        WHERE c.object_type = 'document' AND c.object_id = r.object_id
                          AND c.action = 201 AND c.seq < r.seq
                        ORDER BY c.seq DESC LIMIT 1) AS k, COUNT(*)
                FROM audit_auditevent r
                WHERE r.action = 203 AND {scope.replace("object_", "r.object_")}
                {period.replace("at ", "r.at ")} GROUP BY k""",
            params + period_params,
        )
    )
    keys = sorted(set(closes) | set(reopens))
    return [
        (
            k,
            closes.get(k, 0),
            reopens.get(k, 0),
            round(reopens.get(k, 0) / closes[k], 4) if closes.get(k) else None,
        )
        for k in keys
    ]


def sql_approval_pass(where: Where) -> list[tuple[Any, ...]]:
    docs, params = where.documents()
    period, period_params = where.instants("a.decided_at")
    return fetch(
        f"""SELECT a.step_order, a.step_name, COUNT(*),
                   SUM(CASE WHEN a.decision = 'approve' THEN 1 ELSE 0 END)
            FROM approvals_approvaldecision a
            JOIN approvals_closerequest r ON r.id = a.request_id
            JOIN documents_document d ON d.id = r.document_id
            JOIN core_orgunit o ON o.id = d.org_unit_id
            WHERE {docs} {period}
            GROUP BY a.step_order, a.step_name ORDER BY a.step_order, a.step_name""",
        params + period_params,
    )


def sql_backlog(where: Where, today: date) -> list[tuple[Any, ...]]:
    docs, params = where.documents()
    period, period_params = where.dates("d.document_date")
    limits = [today - timedelta(days=n) for n in (30, 60, 90, 180)]
    rows = fetch(
        f"""SELECT t.doc_type, t.bucket, COUNT(*), SUM(t.total_amount_company) FROM (
              SELECT d.doc_type, d.total_amount_company, CASE
                WHEN d.document_date >= %s THEN '0-30' WHEN d.document_date >= %s THEN '31-60'
                WHEN d.document_date >= %s THEN '61-90' WHEN d.document_date >= %s THEN '91-180'
                ELSE '>180' END AS bucket
              FROM documents_document d JOIN core_orgunit o ON o.id = d.org_unit_id
              WHERE d.close_state IN ('open', 'close_pending', 'on_hold') AND {docs} {period}
            ) t GROUP BY t.doc_type, t.bucket""",
        [*limits, *params, *period_params],
    )
    order = ["0-30", "31-60", "61-90", "91-180", ">180"]
    return sorted(
        ((t, b, n, Decimal(str(v)).quantize(Decimal("0.01"))) for t, b, n, v in rows),
        key=lambda r: (r[0], order.index(r[1])),
    )


def _released(where: Where, group: str, join: str, tail: str) -> list[tuple[Any, ...]]:
    docs, params = where.documents()
    period, period_params = where.instants("l.closed_at")
    return fetch(
        f"""SELECT {group}, COUNT(DISTINCT l.document_id), COUNT(*), SUM(l.released_value_company)
            FROM documents_line l JOIN documents_document d ON d.id = l.document_id
            JOIN core_orgunit o ON o.id = d.org_unit_id {join}
            WHERE l.close_kind = 'manual' AND l.close_state IN ('closed', 'reopen_pending',
                  'archived') AND {docs} {period}
            GROUP BY {group} {tail}""",
        params + period_params,
    )


def _cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def sql_released_by_reason(where: Where) -> list[tuple[Any, ...]]:
    rows = _released(where, "l.close_reason", "", "")
    rows.sort(key=lambda r: (-Decimal(str(r[3])), r[0]))
    return [(r, d, n, _cents(v)) for r, d, n, v in rows]


def sql_released_by_partner(where: Where) -> list[tuple[Any, ...]]:
    rows = _released(where, "p.code, p.name", "LEFT JOIN core_partner p ON p.id = d.partner_id", "")
    rows = [(c, name, d, v) for c, name, d, _n, v in rows]
    rows.sort(key=lambda r: (-Decimal(str(r[3])), r[0] or ""))
    return [(c or "-", name or "", d, _cents(v)) for c, name, d, v in rows[:10]]


# --- the comparisons ------------------------------------------------------------------------


def _filters(world: KpiWorld) -> list[tuple[KpiFilter, Where, Any]]:
    org = world.org
    everyone = (org.company.path,)
    return [
        (KpiFilter(), Where(everyone), world.boss),
        (KpiFilter(doc_type=PO), Where(everyone, doc_type=PO), world.boss),
        (KpiFilter(org_unit=org.dept_a), Where(everyone, org_path=org.dept_a.path), world.boss),
        (KpiFilter(org_unit=org.dept_b), Where(everyone, org_path=org.dept_b.path), world.boss),
        (
            KpiFilter(date_from=date(2026, 3, 4), date_to=date(2026, 3, 8)),
            Where(everyone, start=date(2026, 3, 4), end=date(2026, 3, 8)),
            world.boss,
        ),
        (
            KpiFilter(date_from=date(2026, 3, 10)),
            Where(everyone, start=date(2026, 3, 10)),
            world.boss,
        ),
        (KpiFilter(), Where((org.dept_a.path,)), world.viewer_a),
        (
            KpiFilter(doc_type=SO, org_unit=org.dept_a),
            Where((org.dept_a.path,), doc_type=SO, org_path=org.dept_a.path),
            world.viewer_a,
        ),
    ]


def test_every_kpi_equals_the_direct_sql(world: KpiWorld) -> None:
    for kpi, where, viewer in _filters(world):
        scope = report_scope(viewer)
        label = f"{kpi} as {viewer.username}"
        assert close_cycle_time(scope, kpi, by="doc_type").rows == sql_cycle(where, "d.doc_type"), (
            label
        )
        assert close_cycle_time(scope, kpi, by="org_unit").rows == sql_cycle(where, "o.code"), label
        expected_users = sql_cycle(where, "COALESCE(u.username, 'system')")
        assert close_cycle_time(scope, kpi, by="closed_by").rows == expected_users, label
        assert close_kind_share(scope, kpi).rows == sql_kind_share(where), label
        assert reopen_rate(scope, kpi, by="closed_by").rows == sql_reopen(where, "closed_by"), label
        assert reopen_rate(scope, kpi, by="reason").rows == sql_reopen(where, "reason"), label
        steps = [row[:4] for row in approval_steps(scope, kpi).rows]
        assert steps == sql_approval_pass(where), label
        assert backlog_by_age(scope, kpi, today=TODAY).rows == sql_backlog(where, TODAY), label
        assert released_by_reason(scope, kpi).rows == sql_released_by_reason(where), label
        assert released_by_partner(scope, kpi).rows == sql_released_by_partner(where), label


def test_the_known_history(world: KpiWorld) -> None:
    """The figures of the history in kpi_data.py, worked out by hand."""
    scope = report_scope(world.boss)
    kpi = KpiFilter()
    # PO cycle times: 10 (auto), 32 (closed again on day 3, complete since day -29), 6 (short).
    assert close_cycle_time(scope, kpi).rows == [
        ("payable", 1, 4.0, 4.0),
        ("purchase_order", 3, 10.0, 27.6),
        ("sales_order", 1, 2.67, 2.67),
    ]
    by_user = {row[0]: row for row in reopen_rate(scope, kpi).rows}
    assert by_user["closer1"] == ("closer1", 1, 1, 1.0)
    assert by_user["closer2"] == ("closer2", 2, 0, 0.0)
    assert by_user["system"] == ("system", 2, 0, 0.0)
    # Step 1: approved twice; its first-round latency is unknown (resubmitted), then 1 h.
    # Step 2: rejected after 2 h, approved after 10 h.
    assert approval_steps(scope, kpi).rows == [
        (1, "主管审批", 2, 2, 1.0, 1.0, 1.0),
        (2, "财务审批", 2, 1, 0.5, 6.0, 9.2),
    ]
    # From the next day on, only the last decision counts, still timed from step 1's.
    next_day = KpiFilter(date_from=date(2026, 3, 10))
    assert approval_steps(scope, next_day).rows == [(2, "财务审批", 1, 1, 1.0, 10.0, 10.0)]
    assert [r[:3] for r in backlog_by_age(scope, kpi, today=TODAY).rows] == [
        ("payable", ">180", 1),
        ("purchase_order", "0-30", 1),
        ("purchase_order", "31-60", 1),
        ("purchase_order", "91-180", 1),
        ("sales_order", "61-90", 1),
    ]
    # The short PO released 60 × 3; the SO 2 × 50; the completed PO nothing.
    assert released_by_reason(scope, kpi).rows == [
        ("supplier_cannot_deliver", 1, 1, Decimal("180.00")),
        ("customer_change", 1, 1, Decimal("100.00")),
        ("completed", 1, 1, Decimal("0.00")),
    ]
    assert close_cycle_histogram(scope, kpi).rows == [
        ("<1", 0),
        ("1-7", 3),
        ("7-30", 1),
        ("30-90", 1),
        (">=90", 0),
    ]
    assert world.auto_po.closed_at == BASE


def test_the_report_is_limited_to_the_viewers_grants(world: KpiWorld) -> None:
    report = kpi_report(world.viewer_a, KpiFilter())
    units = {row[0] for row in report.table("cycle_by_org_unit").rows}
    assert units == {"D-A", "T-A1"}
    # Asking for another department's unit shows nothing rather than someone else's data.
    outside = kpi_report(world.viewer_a, KpiFilter(org_unit=world.org.dept_b))
    assert all(not t.rows or t.key == "cycle_histogram" for t in outside.tables)
    assert all(n == 0 for _label, n in outside.table("cycle_histogram").rows)


def test_grants_restricted_to_a_type_restrict_the_report(org: Org) -> None:
    user = user_with_role("po_only", "supervisor", org.company, doc_types=[PO])
    scope = report_scope(user)
    assert scope == ReportScope(((org.company.path, (PO,)),))


def test_without_report_view_the_report_is_refused(org: Org) -> None:
    clerk = user_with_role("clerk", "operator", org.company)
    with pytest.raises(PermissionDenied) as refused:
        kpi_report(clerk, KpiFilter())
    assert refused.value.details["permission"] == "report.view"


def test_bad_filters_say_what_is_wrong(db: None) -> None:
    with pytest.raises(InvalidInput, match="unknown document type 'po'"):
        KpiFilter(doc_type="po")
    with pytest.raises(InvalidInput, match=r"starts \(2026-03-05\) after it ends \(2026-03-01\)"):
        KpiFilter(date_from=date(2026, 3, 5), date_to=date(2026, 3, 1))
    with pytest.raises(InvalidInput, match="unknown grouping"):
        close_cycle_time(ReportScope(()), KpiFilter(), by="weekday")


def test_percentile_is_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0], 0.9) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([6.0, 10.0, 32.0], 0.9) == pytest.approx(27.6)


@pytest.mark.postgres_only
def test_percentiles_match_postgres_percentile_cont(world: KpiWorld) -> None:
    values = [row[2:] for row in close_cycle_time(report_scope(world.boss), KpiFilter()).rows]
    expected = fetch(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v),
                  percentile_cont(0.9) WITHIN GROUP (ORDER BY v)
           FROM (SELECT EXTRACT(EPOCH FROM (d.closed_at - MAX(e.occurred_at))) / 86400.0 AS v,
                        d.doc_type
                 FROM documents_document d JOIN documents_businessevent e
                   ON e.document_id = d.id AND e.status = 'applied'
                  AND e.occurred_at <= d.closed_at
                 WHERE d.close_state = 'closed' GROUP BY d.id, d.doc_type, d.closed_at) t
           GROUP BY doc_type ORDER BY doc_type""",
        [],
    )
    assert values == [(round(float(a), 2), round(float(b), 2)) for a, b in expected]


def test_the_report_reads_in_a_bounded_number_of_queries(
    world: KpiWorld, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(19):  # with the close-dimension table
        kpi_report(world.boss, KpiFilter(org_unit=OrgUnit.objects.get(code="D-B")))


def test_documents_without_event_rows_are_timed_from_their_last_activity(org: Org) -> None:
    """gen-data writes line measures and the last activity time directly, as a bulk sync does:
    such documents get a cycle time from their last activity."""
    call_command(
        "gen_data", "--documents", "6", "--ready-share", "1", "--seed", "3", stdout=StringIO()
    )
    sweep_run()
    generated = OrgUnit.objects.get(code="GEN")
    viewer = user_with_role("gen_viewer", "supervisor", generated)
    rows = close_cycle_time(report_scope(viewer), KpiFilter()).rows
    assert rows == sql_cycle(Where((generated.path,)), "d.doc_type")
    assert rows[0][:2] == ("purchase_order", 6)
