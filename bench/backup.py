"""Backup, verify and restore times (issue 16 §3) at 200,000 documents, PostgreSQL and SQLite.

    .venv/bin/python bench/backup.py [--documents 200000] [--lines 5] [--db postgres|sqlite|both]

Per database: a fresh installation gets `closeout gen-data` purchase orders (bench/sweep.py's
generator), then `backup_take`, `backup_verify` and `backup_restore` (into an empty database)
are each timed in their own process. PostgreSQL uses BENCH_BACKUP_DB (default
closeout_bench_backup on
127.0.0.1, user postgres), which it drops and creates again, and leaves empty at the end;
SQLite a file in a temporary folder. Prints wall times, sizes and rows.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sweep as single

PG_SERVER = single.PG_SERVER
PG_DB = os.environ.get("BENCH_BACKUP_DB", "closeout_bench_backup")
# One audit key for every process of the run (the restored chain is verified with it).
AUDIT_KEY = "bench:" + "b" * 40


def phase_backup(args: argparse.Namespace) -> dict[str, Any]:
    single._django()
    from closeout.ops.backup import backup_take

    started = time.perf_counter()
    manifest = backup_take(actor=None, out=Path(args.file))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "size": manifest.size, "rows": manifest.rows}


def phase_verify(args: argparse.Namespace) -> dict[str, Any]:
    single._django()
    from closeout.ops.backup import backup_verify

    started = time.perf_counter()
    manifest = backup_verify(path=Path(args.file))
    return {"seconds": time.perf_counter() - started, "rows": manifest.rows}


def phase_restore(args: argparse.Namespace) -> dict[str, Any]:
    single._django()
    from closeout.ops.backup import backup_restore

    started = time.perf_counter()
    result = backup_restore(actor=None, path=Path(args.file))
    return {"seconds": time.perf_counter() - started, "rows": result.manifest.rows}


PHASES = {"backup": phase_backup, "verify": phase_verify, "restore": phase_restore}


def _child(phase: str, env_extra: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(env_extra, CLOSEOUT_AUDIT_KEY=AUDIT_KEY)
    if phase == "generate":
        cmd = [sys.executable, single.__file__, "--phase", "generate", *single._forward(args)]
    else:
        cmd = [sys.executable, __file__, "--phase", phase, f"--file={args.file}"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _measure(
    name: str, source: dict[str, str], target: dict[str, str], args: argparse.Namespace, wipe: Any
) -> None:
    gen = _child("generate", source, args)
    taken = _child("backup", source, args)
    verified = _child("verify", source, args)
    wipe()
    restored = _child("restore", target, args)
    print(
        f"\n== {name}: {args.documents:,} purchase orders × {args.lines} lines "
        f"(gen-data {gen['seconds']:.0f} s); {taken['rows']:,} rows, backup file "
        f"{taken['size'] / 2**20:,.0f} MiB"
    )
    for label, figures in (("backup", taken), ("verify", verified), ("restore", restored)):
        print(
            f"  {label:8} {figures['seconds']:8.1f} s  "
            f"{figures['rows'] / figures['seconds']:10,.0f} rows/s"
        )


def run_postgres(args: argparse.Namespace) -> None:
    url = {"DATABASE_URL": f"{PG_SERVER}/{PG_DB}"}

    def recreate() -> None:
        single._pg_admin(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        single._pg_admin(f"CREATE DATABASE {PG_DB}")

    recreate()
    with tempfile.TemporaryDirectory(prefix="closeout_bench_backup_") as tmp:
        args.file = str(Path(tmp) / "closeout.dump")
        try:
            _measure("PostgreSQL", url, url, args, recreate)
        finally:
            recreate()


def run_sqlite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="closeout_bench_backup_") as tmp:
        args.file = str(Path(tmp) / "closeout.sqlite3.backup")
        source = {"CLOSEOUT_VAR_DIR": str(Path(tmp) / "source")}
        target = {"CLOSEOUT_VAR_DIR": str(Path(tmp) / "target")}
        _measure("SQLite", source, target, args, lambda: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--db", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--phase", choices=tuple(PHASES), default=None)
    parser.add_argument("--file", default="")
    args = parser.parse_args()
    # What bench/sweep.py's generator reads.
    args.seed, args.ready_share, args.loop_sample, args.chunk_size = 1, 0.5, 0, 2000
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return
    if args.db in ("postgres", "both"):
        run_postgres(args)
    if args.db in ("sqlite", "both"):
        run_sqlite(args)


if __name__ == "__main__":
    main()
