"""Sweep benchmark: the set-based `sweep_run()` against a per-document ORM loop and plain SQL.

    .venv/bin/python bench/sweep.py [--documents 200000] [--lines 5] [--db postgres|sqlite|both]
                                    [--companies 1]

For each database it generates purchase orders with `closeout gen-data` (half ready to close),
copies the data three times, and on each copy measures one way of closing the ready documents:
(a) `sweep_run()`; (b) a loop that loads each document, evaluates `close_checklist_for(...,
for_auto=True)`, saves its lines and header one by one and writes one audit event with
`audit_record` (timed on a sample, rate extrapolated); (c) plain SQL (find eligible, update
lines and headers, insert one audit row each; no hash chain) as the floor. Every phase runs in
its own process, so its peak RSS is its own. PostgreSQL: databases closeout_bench* on
127.0.0.1:5432 (created and dropped here); SQLite: files in a temporary directory.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proc import backend_pid as _backend_pid
from proc import server_cpu as _server_cpu

PG_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PG_DB = os.environ.get("BENCH_DB_PREFIX", "closeout") + "_bench"
COPIES = ("sweep", "loop", "raw")


# --- child phases (run with DATABASE_URL set) ---------------------------------------------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    import django

    django.setup()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _company_shares(documents: int, companies: int) -> list[int]:
    """The documents split as evenly as possible over `companies` (the first ones get the
    remainder)."""
    base, rest = divmod(documents, max(companies, 1))
    return [base + (1 if i < rest else 0) for i in range(max(companies, 1))]


def _own_cpu() -> float:
    """CPU seconds (user + system) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase_generate(args: argparse.Namespace) -> dict[str, Any]:
    _django()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    for i, share in enumerate(_company_shares(args.documents, args.companies)):
        # The first share goes where one company's would (unit GEN, a company of its own);
        # each further one to a new company BENCH2, BENCH3 … with its own unit and numbers.
        extra: dict[str, Any] = {}
        if i:
            from closeout.access.companies import company_create

            code = f"BENCH{i + 1}"
            company_create(actor=None, code=code, name=f"bench company {i + 1}", currency="CNY")
            extra = {"company": code, "prefix": f"GEN{i + 1}"}
        call_command(
            "gen_data",
            documents=share,
            lines_per_document=args.lines,
            ready_share=str(args.ready_share),
            seed=args.seed + i,
            **extra,
        )
    seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # hint bits and statistics, as on a live database
    return {"seconds": seconds, "rss_mb": _rss_mb()}


def phase_sweep(args: argparse.Namespace) -> dict[str, Any]:
    _django()
    from django.db import connection

    from closeout.audit.services import audit_chain_verify
    from closeout.closing.sweep import sweep_run

    pid = _backend_pid()
    statements: dict[str, list[float]] = {}

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0, c0 = time.perf_counter(), _server_cpu(pid)
        try:
            return execute(sql, params, many, context)
        finally:
            entry = statements.setdefault(_statement_name(sql), [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - t0
            entry[2] += _server_cpu(pid) - c0

    server0, own0 = _server_cpu(pid), _own_cpu()
    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        run = sweep_run(doc_type="purchase_order", chunk_size=args.chunk_size)
    seconds = time.perf_counter() - started
    server_cpu, own_cpu = _server_cpu(pid) - server0, _own_cpu() - own0
    verdict = audit_chain_verify()
    return {
        "seconds": seconds,
        "documents": run.closed,
        "lines": run.lines_closed,
        "examined": run.examined,
        "chain_intact": verdict.intact,
        "hot_share": _line_hot_share(),
        "header_hot_share": _hot_share_of("documents_document"),
        "server_cpu": server_cpu,
        "own_cpu": own_cpu,
        "statements": sorted(statements.items(), key=lambda kv: -kv[1][2]),
        "rss_mb": _rss_mb(),
    }


def _statement_name(sql: str) -> str:
    """A statement of the sweep by its beginning (what follows is its chunk's data)."""
    return " ".join(sql.replace('"', "").split())[:64]


def phase_loop(args: argparse.Namespace) -> dict[str, Any]:
    """One document at a time, the way an ORM application would: no set-based statement."""
    _django()
    from decimal import Decimal

    from django.db import transaction
    from django.utils import timezone

    from closeout.audit.models import AuditAction, AuditObject
    from closeout.audit.services import audit_record
    from closeout.closing.selectors import close_checklist_for
    from closeout.documents.models import CloseKind, CloseState, Document

    ids = list(
        Document.objects.filter(doc_type="purchase_order", close_state=CloseState.OPEN)
        .order_by("pk")
        .values_list("pk", flat=True)[: args.loop_sample]
    )
    closed = lines_closed = 0
    started = time.perf_counter()
    for pk in ids:
        with transaction.atomic():
            document = Document.objects.select_for_update().select_related("org_unit").get(pk=pk)
            lines = list(document.lines.all())
            if close_checklist_for(document, for_auto=True).verdict != "ready":
                continue
            now = timezone.now()
            seq = document.close_seq + 1
            released = released_company = Decimal(0)
            for line in lines:
                if line.close_state != CloseState.OPEN:
                    continue
                open_qty = max(line.planned_qty - line.fulfilled_qty, Decimal(0))
                line.close_state, line.close_kind = CloseState.CLOSED, CloseKind.AUTO
                line.close_reason, line.closed_at, line.closed_in = "auto_rules_met", now, seq
                line.released_qty = open_qty
                line.released_value = open_qty * line.unit_price
                line.released_value_company = line.released_value * document.exchange_rate
                line.save()
                released += line.released_value
                released_company += line.released_value_company
                lines_closed += 1
            document.close_state, document.close_kind = CloseState.CLOSED, CloseKind.AUTO
            document.close_reason, document.close_date = "auto_rules_met", timezone.localdate(now)
            document.closed_at = document.state_changed_at = now
            document.close_seq, document.version = seq, document.version + 1
            document.released_value, document.released_value_company = released, released_company
            document.save()
            audit_record(
                actor=None,
                action=AuditAction.DOCUMENT_CLOSED,
                object_type=AuditObject.DOCUMENT,
                object_id=document.pk,
                object_repr=document.label,
                data={"from": "open", "to": "closed", "kind": "auto", "released_value": released},
                reason="auto_rules_met",
            )
            closed += 1
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "sample": len(ids),
        "documents": closed,
        "lines": lines_closed,
        "rss_mb": _rss_mb(),
    }


_ELIGIBLE = """
SELECT d.id FROM documents_document d
WHERE d.doc_type = 'purchase_order' AND d.close_state = 'open'
  AND COALESCE(d.last_activity_at, d.created_at) < {cutoff}
  AND NOT EXISTS (SELECT 1 FROM documents_businessevent e
                  WHERE e.document_id = d.id AND e.status IN ('pending', 'quarantined'))
  AND NOT EXISTS (
    SELECT 1 FROM documents_line l
    WHERE l.document_id = d.id AND l.close_state IN ('open', 'on_hold', 'close_pending')
      AND (l.close_state <> 'open'
           OR l.fulfilled_qty * 100 < l.planned_qty * 98
           OR l.fulfilled_qty * 100 > l.planned_qty * 105
           OR abs(l.invoiced_qty - l.fulfilled_qty) > 0
           OR abs(l.invoiced_amount - l.fulfilled_qty * l.unit_price)
              > {greatest}(1, l.fulfilled_qty * l.unit_price * 0.005)
           OR l.invoiced_amount - l.settled_amount > 1))
"""


def _raw_statements(vendor: str) -> list[str]:
    # Only fixed SQL fragments are formatted in (no input): hence the S608 exemptions below.
    pg = vendor == "postgresql"
    now = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    greatest = "greatest" if pg else "max"
    cutoff = (
        "now() - interval '7 days'" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now', '-7 days')"
    )
    open_qty = f"{greatest}(l.planned_qty - l.fulfilled_qty, 0)"
    data = (
        "jsonb_build_object('from', 'open', 'to', 'closed', 'kind', 'auto')"
        if pg
        else "json_object('from', 'open', 'to', 'closed', 'kind', 'auto')"
    )
    return [
        "CREATE TEMP TABLE eligible AS " + _ELIGIBLE.format(cutoff=cutoff, greatest=greatest),
        f"""UPDATE documents_line AS l SET close_state = 'closed', close_kind = 'auto',
              close_reason = 'auto_rules_met', closed_at = {now}, closed_in = d.close_seq + 1,
              released_qty = {open_qty}, released_value = {open_qty} * l.unit_price,
              released_value_company = {open_qty} * l.unit_price * d.exchange_rate
            FROM documents_document AS d
            WHERE d.id = l.document_id AND l.close_state = 'open'
              AND d.id IN (SELECT id FROM eligible)""",  # noqa: S608
        f"""UPDATE documents_document AS d SET close_state = 'closed', close_kind = 'auto',
              close_reason = 'auto_rules_met', closed_at = {now}, state_changed_at = {now},
              close_date = date('now'), close_seq = d.close_seq + 1, version = d.version + 1,
              released_value = s.v, released_value_company = s.vc
            FROM (SELECT document_id, sum(released_value) AS v,
                         sum(released_value_company) AS vc
                  FROM documents_line WHERE document_id IN (SELECT id FROM eligible)
                  GROUP BY document_id) AS s
            WHERE d.id = s.document_id""",  # noqa: S608
        f"""INSERT INTO audit_auditevent (seq, at, actor_name, action, object_type, object_id,
              object_repr, data, reason, request_id, http_request_id, key_id, prev_hash,
              hash)
            SELECT (SELECT COALESCE(MAX(seq), 0) FROM audit_auditevent)
                     + row_number() OVER (ORDER BY d.id),
                   {now}, 'system', 201, 'document', CAST(d.id AS TEXT),
                   'purchase_order ' || d.number, {data}, 'auto_rules_met', '', '', '', '', ''
            FROM documents_document d WHERE d.id IN (SELECT id FROM eligible)""",  # noqa: S608
    ]


_LEAN_SETUP = [
    # The same facts in lean tables: one index on lines, free space on every page for HOT
    # updates, the header and audit tables with their primary key only.
    """CREATE TABLE lean_line WITH (fillfactor = 70) AS
         SELECT id, document_id, planned_qty, fulfilled_qty, unit_price, close_state,
                closed_at, closed_in, released_qty, released_value, released_value_company
         FROM documents_line""",
    "ALTER TABLE lean_line ADD PRIMARY KEY (id)",
    """CREATE TABLE lean_document WITH (fillfactor = 70) AS
         SELECT id, close_state, exchange_rate, close_seq, closed_at, released_value,
                released_value_company FROM documents_document""",
    "ALTER TABLE lean_document ADD PRIMARY KEY (id)",
    """CREATE TABLE lean_audit (seq bigint PRIMARY KEY, at timestamptz, object_id bigint,
         data jsonb, hash bytea)""",
    "CREATE TEMP TABLE lean_eligible AS "
    + _ELIGIBLE.format(cutoff="now() - interval '7 days'", greatest="greatest"),
    "VACUUM ANALYZE lean_line",
    "VACUUM ANALYZE lean_document",
]

_LEAN_WRITES = [
    """UPDATE lean_line AS l SET close_state = 'closed', closed_at = now(),
         closed_in = d.close_seq + 1,
         released_qty = greatest(l.planned_qty - l.fulfilled_qty, 0),
         released_value = greatest(l.planned_qty - l.fulfilled_qty, 0) * l.unit_price,
         released_value_company =
           greatest(l.planned_qty - l.fulfilled_qty, 0) * l.unit_price * d.exchange_rate
       FROM lean_document AS d
       WHERE d.id = l.document_id AND l.close_state = 'open'
         AND l.document_id IN (SELECT id FROM lean_eligible)""",
    """UPDATE lean_document AS d SET close_state = 'closed', closed_at = now(),
         close_seq = d.close_seq + 1, released_value = s.v, released_value_company = s.vc
       FROM (SELECT document_id, sum(released_value) AS v, sum(released_value_company) AS vc
             FROM lean_line WHERE document_id IN (SELECT id FROM lean_eligible)
             GROUP BY document_id) AS s
       WHERE d.id = s.document_id""",
    """INSERT INTO lean_audit (seq, at, object_id, data, hash)
       SELECT row_number() OVER (ORDER BY d.id), now(), d.id,
              jsonb_build_object('from', 'open', 'to', 'closed', 'released_value',
                                 d.released_value),
              sha256(convert_to(d.id::text || d.released_value::text, 'UTF8'))
       FROM lean_document d WHERE d.id IN (SELECT id FROM lean_eligible)""",
]


def _lean_floor() -> dict[str, float]:
    """The lean floor (PostgreSQL): the eligible set found first (not timed: the schema floor
    times finding it), then the cheapest UPDATE/INSERT set that records the same facts."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        for sql in _LEAN_SETUP:
            cursor.execute(sql)
    timings: dict[str, float] = {}
    server0 = _server_cpu()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for name, sql in zip(("lines", "headers", "audit"), _LEAN_WRITES, strict=True):
            t0, c0 = time.perf_counter(), _server_cpu()
            cursor.execute(sql)
            timings[name] = time.perf_counter() - t0
            timings[f"{name}_cpu"] = _server_cpu() - c0
    timings["seconds"] = time.perf_counter() - started
    timings["server_cpu"] = _server_cpu() - server0
    timings["hot_share"] = _hot_share_of("lean_line")
    with connection.cursor() as cursor:
        for table in ("lean_audit", "lean_document", "lean_line"):
            cursor.execute(f"DROP TABLE {table}")
    return timings


def _hot_share(row: tuple[int, int] | None) -> float:
    return row[1] / row[0] if row and row[0] else 0.0


def _hot_share_of(table: str) -> float:
    """Share of heap-only (HOT) updates of `table`, from the statistics (flushed first)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = %s",
            [table],
        )
        return _hot_share(cursor.fetchone())


def _line_hot_share() -> float:
    return _hot_share_of("documents_line")


def phase_raw(args: argparse.Namespace) -> dict[str, Any]:
    _django()
    from django.db import connection, transaction

    lean = _lean_floor() if connection.vendor == "postgresql" else {}
    server0 = _server_cpu()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The floor's audit rows carry no hash chain: the chain's guard triggers are off.
            cursor.execute("SET LOCAL session_replication_role = replica")
        steps, steps_cpu = [], []
        for sql in _raw_statements(connection.vendor):
            t0, c0 = time.perf_counter(), _server_cpu()
            cursor.execute(sql)
            steps.append(round(time.perf_counter() - t0, 2))
            steps_cpu.append(round(_server_cpu() - c0, 2))
        cursor.execute("SELECT COUNT(*) FROM eligible")
        documents = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COUNT(*) FROM documents_line WHERE document_id IN (SELECT id FROM eligible)"
        )
        lines = cursor.fetchone()[0]
    return {
        "seconds": time.perf_counter() - started,
        "server_cpu": _server_cpu() - server0,
        "documents": documents,
        "lines": lines,
        "lean": lean,
        "steps": steps,
        "steps_cpu": steps_cpu,
        "hot_share": _line_hot_share(),
        "rss_mb": _rss_mb(),
    }


PHASES = {"generate": phase_generate, "sweep": phase_sweep, "loop": phase_loop, "raw": phase_raw}


# --- orchestration -------------------------------------------------------------------------------


def _child(
    phase: str, database_url: str | None, args: argparse.Namespace, env_extra: dict[str, str]
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(env_extra)
    if database_url:
        env["DATABASE_URL"] = database_url
    cmd = [sys.executable, __file__, "--phase", phase, *_forward(args)]
    out = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    out.check_returncode()
    printed = [line for line in out.stdout.splitlines() if line.strip()]
    for line in printed[:-1]:
        print(f"    | {line}")
    result: dict[str, Any] = json.loads(printed[-1])
    return result


def _forward(args: argparse.Namespace) -> list[str]:
    return [
        f"--documents={args.documents}",
        f"--lines={args.lines}",
        f"--seed={args.seed}",
        f"--ready-share={args.ready_share}",
        f"--loop-sample={args.loop_sample}",
        f"--chunk-size={args.chunk_size}",
        f"--companies={args.companies}",
    ]


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _report(
    name: str, gen: dict[str, Any], res: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    sweep, loop, raw = res["sweep"], res["loop"], res["raw"]
    loop_rate = loop["sample"] / loop["seconds"] if loop["seconds"] else 0.0
    loop_total = args.documents / loop_rate if loop_rate else float("inf")
    lines_per_doc = sweep["lines"] / sweep["documents"] if sweep["documents"] else 0
    print(
        f"\n== {name}: {args.documents:,} purchase orders × {args.lines} lines"
        f"{f' in {args.companies} companies' if args.companies > 1 else ''}, "
        f"{args.ready_share:.0%} ready; gen-data {gen['seconds']:.1f} s "
        f"(peak RSS {gen['rss_mb']:.0f} MB)"
    )
    print(
        f"  (a) sweep_run()      {sweep['seconds']:8.2f} s  "
        f"{args.documents / sweep['seconds']:10,.0f} "
        f"docs/s examined  {sweep['documents'] / sweep['seconds']:9,.0f} closed docs/s  "
        f"{sweep['lines'] / sweep['seconds']:10,.0f} lines/s  closed {sweep['documents']:,} docs / "
        f"{sweep['lines']:,} lines; audit chain {'intact' if sweep['chain_intact'] else 'BROKEN'}; "
        f"peak RSS {sweep['rss_mb']:.0f} MB"
    )
    print(
        f"      CPU: server {sweep['server_cpu']:.2f} s, this process {sweep['own_cpu']:.2f} s; "
        f"header updates heap-only (HOT): {sweep['header_hot_share']:.0%}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    if sweep.get("statements"):
        listed = sweep["statements"][:8]
        rest = sweep["server_cpu"] - sum(cpu for _, (_n, _w, cpu) in listed)
        print(
            "      per statement, server CPU / wall (count):\n"
            + "".join(
                f"        {cpu:6.2f} s / {wall:6.2f} s (×{n:,})  {name}\n"
                for name, (n, wall, cpu) in listed
            )
            + f"        {rest:6.2f} s  the rest (audit COPY, commits, statements not listed)"
        )
    print(
        f"  (b) per-doc ORM loop {loop['seconds']:8.2f} s on a sample of {loop['sample']:,} docs "
        f"({loop['documents']:,} closed): {loop_rate:,.0f} docs/s, "
        f"{loop_rate * lines_per_doc / 2 if lines_per_doc else 0:,.0f} lines/s; extrapolated to "
        f"{args.documents:,} docs: {loop_total:,.0f} s; peak RSS {loop['rss_mb']:.0f} MB"
    )
    print(
        f"  (c) schema SQL floor {raw['seconds']:8.2f} s  {args.documents / raw['seconds']:10,.0f} "
        f"docs/s examined  closed {raw['documents']:,} docs / {raw['lines']:,} lines; "
        f"peak RSS {raw['rss_mb']:.0f} MB"
    )
    print(
        "      per statement (eligible, lines, headers, audit): "
        + ", ".join(f"{s:.2f} s" for s in raw["steps"])
        + f"; line updates heap-only (HOT): {raw['hot_share']:.0%}"
    )
    print(
        f"      server CPU {raw['server_cpu']:.2f} s; per statement: "
        + ", ".join(f"{s:.2f} s" for s in raw["steps_cpu"])
    )
    lean = raw["lean"]
    if lean:
        print(
            f"  (d) lean SQL floor   {lean['seconds']:8.2f} s  (lines {lean['lines']:.2f} s, "
            f"headers {lean['headers']:.2f} s, audit {lean['audit']:.2f} s; lean tables, one "
            f"index on lines, fillfactor 70; HOT {lean['hot_share']:.0%})"
        )
        print(
            f"      server CPU {lean['server_cpu']:.2f} s (lines {lean['lines_cpu']:.2f} s, "
            f"headers {lean['headers_cpu']:.2f} s, audit {lean['audit_cpu']:.2f} s)"
        )
    print(
        f"  sweep vs loop: {loop_total / sweep['seconds']:.1f}× faster;  "
        f"sweep vs schema floor: {sweep['seconds'] / raw['seconds']:.2f}×"
        + (f";  sweep vs lean floor: {sweep['seconds'] / lean['seconds']:.2f}×" if lean else "")
        + f";  sweep line updates HOT: {sweep['hot_share']:.0%}"
    )
    if lean and lean["server_cpu"]:
        print(
            f"  server CPU: sweep {sweep['server_cpu']:.2f} s = "
            f"{sweep['server_cpu'] / raw['server_cpu']:.2f}× the schema floor's, "
            f"{sweep['server_cpu'] / lean['server_cpu']:.2f}× the lean floor's; sweep server + "
            f"process CPU {sweep['server_cpu'] + sweep['own_cpu']:.2f} s = "
            f"{(sweep['server_cpu'] + sweep['own_cpu']) / lean['server_cpu']:.2f}× the lean floor"
        )


def run_postgres(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="closeout_bench_var_") as var:
        # Audit keys and checkpoints of these fresh databases, not of the worktree's.
        os.environ["CLOSEOUT_VAR_DIR"] = var
        _run_postgres(args)


def _run_postgres(args: argparse.Namespace) -> None:
    names = {c: f"{PG_DB}_{c}" if c != "sweep" else PG_DB for c in COPIES}
    for name in names.values():
        _pg_admin(f"DROP DATABASE IF EXISTS {name}")
    _pg_admin(f"CREATE DATABASE {PG_DB}")
    try:
        gen = _child("generate", f"{PG_SERVER}/{PG_DB}", args, {})
        for copy in ("loop", "raw"):
            _pg_admin(f"CREATE DATABASE {names[copy]} TEMPLATE {PG_DB}")
        res = {c: _child(c, f"{PG_SERVER}/{names[c]}", args, {}) for c in COPIES}
        _report("PostgreSQL", gen, res, args)
    finally:
        for name in names.values():
            _pg_admin(f"DROP DATABASE IF EXISTS {name}")


def run_sqlite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="closeout_bench_") as tmp:
        base = Path(tmp) / "gen"
        base.mkdir()
        gen = _child("generate", None, args, {"CLOSEOUT_VAR_DIR": str(base)})
        res = {}
        for copy in COPIES:
            target = Path(tmp) / copy
            shutil.copytree(base, target)
            res[copy] = _child(copy, None, args, {"CLOSEOUT_VAR_DIR": str(target)})
        _report("SQLite", gen, res, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--db", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ready-share", type=float, default=0.5)
    parser.add_argument("--loop-sample", type=int, default=5000)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument(
        "--companies", type=int, default=1, help="spread the documents over this many companies"
    )
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    if args.db in ("postgres", "both"):
        run_postgres(args)
    if args.db in ("sqlite", "both"):
        run_sqlite(args)


if __name__ == "__main__":
    main()
