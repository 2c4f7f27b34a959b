"""`closeout batch ...`: batch jobs (批量处理) from the command line.

closeout batch create ACTION [TYPE] (--numbers A,B | --filter JSON | --requests 1,2)
                      [--reason CODE] [--remark T] [--date D] [--comment T] --as USER
closeout batch preview ID --as USER
closeout batch run ID [--workers N] --as USER     (no broker: runs here, printing progress)
closeout batch status ID | results ID [--failed] | cancel ID --as USER | resume ID --as USER
closeout batch undo ID [--reason CODE] [--remark T] [--run] --as USER
                      (an undo job: reopens what batch ID closed; previewed, --run runs it)
"""

import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.test.utils import override_settings
from django.utils.translation import gettext_noop

from closeout.batches.models import BatchJob, BatchState
from closeout.batches.selectors import batch_results
from closeout.batches.services import (
    batch_cancel,
    batch_create,
    batch_dispatch,
    batch_preview,
    batch_resume,
    batch_start,
)
from closeout.batches.undo import DEFAULT_REASON, batch_undo_create, undone_by
from closeout.core.cli import (
    EXIT_ERROR,
    DomainCommand,
    actor_for,
    fmt,
    parse_date,
    table,
    whole_number,
)
from closeout.core.errors import InvalidInput, NotFound
from closeout.core.inputs import is_digits


def _job(job_id: int) -> BatchJob:
    job = BatchJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(gettext_noop("no batch job #%(job_id)s"), params={"job_id": job_id})
    return job


def _ints(value: str | None, option: str) -> list[int] | None:
    if value is None:
        return None
    parts = [v.strip() for v in value.split(",") if v.strip()]
    if not all(is_digits(v) and len(v) <= 18 for v in parts):
        raise InvalidInput(
            gettext_noop("%(option)s: '%(value)s' is not a list of ids such as 3,4"),
            details={"field": option},
            params={"option": option, "value": value},
        )
    return [int(v) for v in parts]


class Command(DomainCommand):
    help = (
        "Create, preview, run and follow batch jobs (close, reopen, request, approve, reject), "
        "and undo a batch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="a batch from numbers, a filter or request ids")
        create.add_argument("action", choices=["close", "reopen", "request", "approve", "reject"])
        create.add_argument("doc_type", nargs="?", default="", metavar="TYPE")
        create.add_argument("--numbers", help="document numbers, comma-separated")
        create.add_argument("--filter", help='queue filter as JSON, e.g. {"verdict": "ready"}')
        create.add_argument("--requests", help="close request ids, comma-separated")
        create.add_argument("--reason", default="")
        create.add_argument("--remark", default="")
        create.add_argument("--date", default=None)
        create.add_argument("--comment", default="")
        for name in ("preview", "run", "cancel", "resume"):
            verb = sub.add_parser(name)
            verb.add_argument("job_id", type=whole_number)
        undo = sub.add_parser("undo", help="undo a batch: reopen what it closed")
        undo.add_argument("job_id", type=whole_number)
        undo.add_argument("--reason", default=DEFAULT_REASON)
        undo.add_argument("--remark", default="")
        undo.add_argument("--run", action="store_true", help="run the undo job after its preview")
        undo.add_argument("--workers", type=whole_number, default=2)
        for verb_parser in (
            create,
            undo,
            *[sub.choices[n] for n in ("preview", "run", "cancel", "resume")],
        ):
            self.add_actor_argument(verb_parser)
        sub.choices["run"].add_argument("--workers", type=whole_number, default=2)
        sub.choices["resume"].add_argument("--workers", type=whole_number, default=2)
        status = sub.add_parser("status")
        status.add_argument("job_id", type=whole_number)
        results = sub.add_parser("results")
        results.add_argument("job_id", type=whole_number)
        results.add_argument("--failed", action="store_true", help="only failed items")

    def handle(self, *args: Any, **options: Any) -> None:
        verb = options["verb"]
        if verb == "status":
            self._status(_job(options["job_id"]))
            return
        if verb == "results":
            self._results(_job(options["job_id"]), failed_only=options["failed"])
            return
        actor = actor_for(options["as_user"])
        if verb == "create":
            queue_filter = None
            if options["filter"]:
                try:
                    queue_filter = json.loads(options["filter"])
                except json.JSONDecodeError as exc:
                    raise InvalidInput(
                        gettext_noop("--filter is not valid JSON: %(msg)s"), params={"msg": exc.msg}
                    ) from exc
            numbers = options["numbers"].split(",") if options["numbers"] else None
            job = batch_create(
                actor=actor,
                action=options["action"],
                doc_type=options["doc_type"],
                numbers=numbers,
                queue_filter=queue_filter,
                request_ids=_ints(options["requests"], "--requests"),
                reason_code=options["reason"],
                remark=options["remark"],
                close_date=parse_date(options["date"], "--date"),
                comment=options["comment"],
            )
            self.stdout.write(f"created batch #{job.pk}: {job.action}, {job.total} items")
        elif verb == "preview":
            job = batch_preview(actor=actor, job=_job(options["job_id"]))
            self._status(job)
        elif verb == "undo":
            job = batch_undo_create(
                actor=actor,
                job_id=options["job_id"],
                reason_code=options["reason"],
                remark=options["remark"],
            )
            self.stdout.write(f"created undo batch #{job.pk} of batch #{options['job_id']}")
            job = batch_preview(actor=actor, job=job)
            self._status(job)
            if options["run"]:
                self._start(actor, batch_start, job.pk, options["workers"])
        elif verb in ("run", "resume"):
            start = batch_start if verb == "run" else batch_resume
            self._start(actor, start, options["job_id"], options["workers"])
        elif verb == "cancel":
            self._status(batch_cancel(actor=actor, job=_job(options["job_id"])))

    def _start(self, actor: Any, start: Any, job_id: int, workers: int) -> None:
        if settings.CELERY_BROKER_URL:
            # A broker that does not answer: BrokerUnavailable, one line, exit 1; the job
            # stays queued and is sent when the broker is back.
            job = start(actor=actor, job=_job(job_id), workers=workers)
            self._follow(job)
        else:
            # No broker: do the work in this process, after the start commits.
            with override_settings(CLOSEOUT_TASKS_INLINE=True):
                job = start(actor=actor, job=_job(job_id), workers=1)
                # Already run when the start committed; inside a caller's transaction it
                # was not, so run it now (a job with nothing left to send is untouched).
                batch_dispatch(job.pk)
            job.refresh_from_db()
            self._status(job)
        self._fail_if_failed(job)

    def _follow(self, job: BatchJob) -> None:
        while True:
            job.refresh_from_db()
            self.stdout.write(
                f"  {job.processed}/{job.total} ({job.percent}%), "
                f"{job.rate:.0f}/s, eta {fmt(job.eta)}"
            )
            if job.state in (BatchState.DONE, BatchState.CANCELLED, BatchState.FAILED):
                break
            if job.state == BatchState.QUEUED and job.send_pending and job.send_error:
                break  # its tasks could not be sent: waiting would never end
            time.sleep(1)
        self._status(job)

    @staticmethod
    def _fail_if_failed(job: BatchJob) -> None:
        if job.state == BatchState.FAILED:
            raise CommandError(f"batch #{job.pk} failed: {job.error}", returncode=EXIT_ERROR)
        if job.state == BatchState.QUEUED and job.send_pending and job.send_error:
            raise CommandError(
                f"batch #{job.pk} is queued but not running: {job.send_error}; it starts when "
                f"the broker answers again, or run `closeout batch resume {job.pk}`",
                returncode=EXIT_ERROR,
            )

    def _status(self, job: BatchJob) -> None:
        self.stdout.write(
            f"batch #{job.pk} {job.action} {job.doc_type}: {job.state}, "
            f"{job.processed}/{job.total} processed ({job.percent}%), "
            f"{job.succeeded} done, {job.failed} failed, {job.skipped} skipped, "
            f"{job.rate:.1f}/s"
        )
        if job.undoes_id:
            self.stdout.write(f"  undoes batch #{job.undoes_id}")
        undo = undone_by(job)
        if undo is not None:
            self.stdout.write(f"  undone by #{undo.pk} ({undo.state})")
        if job.error:
            label = "failed" if job.state == BatchState.FAILED else "error"
            self.stdout.write(f"  {label}: {job.error}")
        if job.send_pending and job.send_error:
            self.stdout.write(
                f"  not sent yet ({job.send_pending} worker task(s)): {job.send_error}; "
                f"sent when the broker answers, or `closeout batch resume {job.pk}`"
            )
        if job.predicted:
            self.stdout.write(
                "  preview: "
                + ", ".join(f"{k} {v}" for k, v in sorted(job.predicted.items()))
                + f"; open value released {fmt(job.predicted_released_value)}"
            )

    def _results(self, job: BatchJob, *, failed_only: bool) -> None:
        items = batch_results(job)
        if failed_only:
            items = items.filter(state="failed")
        rows = [
            (
                i.label,
                i.predicted or "—",
                i.state,
                i.outcome or "—",
                i.message or i.predicted_message or "",
            )
            for i in items[:1000]
        ]
        for line in table(["document", "preview", "state", "outcome", "message"], rows):
            self.stdout.write(line)
