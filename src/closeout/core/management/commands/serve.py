"""`closeout serve`: collect static files, then run the production WSGI server (gunicorn).

Each request is logged once, as a JSON line, by closeout.core.middleware (not by gunicorn)."""

import os
import sys
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandParser
from django.db import connections
from django.utils.translation import gettext_noop
from gunicorn.config import Config

from closeout.core.cli import DomainCommand, positive_int, whole_number
from closeout.core.errors import InvalidInput

THREADS = 4


def fresh_metrics_dir() -> None:
    """Under PROMETHEUS_MULTIPROC_DIR every worker keeps its metrics in files; a new server
    starts from none (prometheus_client's rule), so counters do not carry a dead run's pids."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


class Command(DomainCommand):
    help = "Serve closeout with gunicorn (closeout.wsgi:application); static files via WhiteNoise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=whole_number, default=8000)
        parser.add_argument("--workers", type=whole_number, default=2, metavar="N")
        parser.add_argument("--threads", type=whole_number, default=THREADS, metavar="N")

    def handle(self, *args: Any, **options: Any) -> None:
        host: str = options["host"]
        port: int = options["port"]
        if not 0 < port < 65536:
            raise InvalidInput(
                gettext_noop("--port must be between 1 and 65535, got %(port)s"),
                params={"port": port},
            )
        workers = positive_int(options["workers"], "--workers")
        threads = positive_int(options["threads"], "--threads")
        call_command("collectstatic", interactive=False, verbosity=0)
        fresh_metrics_dir()
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.stdout.write(
            f"closeout on http://{bind}/ (gunicorn, {workers} workers × {threads} threads)"
        )
        self.stdout.flush()
        connections.close_all()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "closeout.wsgi:application",
            "--bind",
            bind,
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
        if "control_socket_disable" in Config().settings:
            # Newer gunicorn opens a control socket at one fixed path in $HOME, which a second
            # instance (tests, another checkout) would fight over; closeout does not use it.
            argv.append("--no-control-socket")
        # Replace this process, so signals (Ctrl-C, SIGTERM) reach gunicorn's master directly.
        os.execv(sys.executable, argv)  # noqa: S606 (fixed argv, no shell)
