"""`closeout beat`: Celery beat, which schedules sweeps, alerts, grant expiry and retries."""

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from closeout.core.cli import DomainCommand


class Command(DomainCommand):
    help = "Run Celery beat (the schedule is CELERY_BEAT_SCHEDULE in settings)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.CELERY_BROKER_URL:
            raise CommandError("no broker configured: set CELERY_BROKER_URL")
        from closeout.celery import app

        schedule_file = str(settings.VAR_DIR / "celerybeat-schedule")
        app.start(["beat", f"--loglevel={options['loglevel']}", f"--schedule={schedule_file}"])
