"""A background process of a benchmark (a Celery worker, `closeout serve`) and the peak RSS of
its process tree, sampled while it runs; the CPU time of the database server's backend."""

import os
import subprocess
import threading
import time
from pathlib import Path


class Watched:
    def __init__(
        self, args: list[str], *, env: dict[str, str], log: Path, interval: float = 0.1
    ) -> None:
        self.process = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),  # noqa: SIM115 (kept open for the process's life)
        )
        self.peak_mb = 0.0
        self._interval = interval
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        import psutil

        proc = psutil.Process(self.process.pid)
        while not self._stop.is_set():
            try:
                rss = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True)
                )
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, rss / 1e6)
            time.sleep(self._interval)

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()


def backend_pid() -> int | None:
    """The PostgreSQL backend process of this connection; None on another database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid: int = cursor.fetchone()[0]
    return pid


def server_cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) the database server process of this connection has used so
    far (PostgreSQL on this machine: /proc/<backend pid>/stat), 0.0 elsewhere. On a loaded
    machine this, not the wall time, is what a statement costs the server. With `pid` given no
    query is sent (for use inside an execute wrapper)."""
    pid = pid or backend_pid()
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
