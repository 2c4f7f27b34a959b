"""Prometheus metrics of the process (prometheus_client): HTTP requests, sweeps and batch jobs.

The domain calls the small `observe_*` functions; /metrics (closeout.ops) writes them out.
With PROMETHEUS_MULTIPROC_DIR set (gunicorn with several workers) prometheus_client keeps the
values in files there and the scrape adds up every worker's."""

import os
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import REGISTRY

# Seconds: a request takes milliseconds; a sweep or a batch job takes up to hours.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600)

http_requests = Counter(
    "closeout_http_requests",
    "HTTP requests served, by view (URL name), method and status.",
    ["view", "method", "status"],
)
http_request_duration = Histogram(
    "closeout_http_request_duration_seconds",
    "Time to produce the response, by view and status.",
    ["view", "status"],
    buckets=_REQUEST_BUCKETS,
)
sweep_runs = Counter(
    "closeout_sweep_runs", "Automatic close sweeps run, by document type.", ["doc_type", "dry_run"]
)
sweep_duration = Histogram(
    "closeout_sweep_duration_seconds",
    "Duration of automatic close sweeps, by document type.",
    ["doc_type", "dry_run"],
    buckets=_JOB_BUCKETS,
)
sweep_closed = Counter(
    "closeout_sweep_documents_closed", "Documents closed by the sweep.", ["doc_type"]
)
batch_jobs = Counter("closeout_batch_jobs_finished", "Batch jobs finished, by action.", ["action"])
batch_duration = Histogram(
    "closeout_batch_duration_seconds",
    "Duration of finished batch jobs from start to finish, by action.",
    ["action"],
    buckets=_JOB_BUCKETS,
)
batch_items = Counter(
    "closeout_batch_items",
    "Items of finished batch jobs, by action and outcome.",
    ["action", "outcome"],
)


def observe_request(view: str, method: str, status: int, seconds: float) -> None:
    http_requests.labels(view=view, method=method, status=str(status)).inc()
    http_request_duration.labels(view=view, status=str(status)).observe(seconds)


def observe_sweep(*, doc_type: str, dry_run: bool, seconds: float, closed: int) -> None:
    label = doc_type or "all"
    sweep_runs.labels(doc_type=label, dry_run=str(dry_run).lower()).inc()
    sweep_duration.labels(doc_type=label, dry_run=str(dry_run).lower()).observe(seconds)
    if closed:
        sweep_closed.labels(doc_type=label).inc(closed)


class FinishedJob(Protocol):
    """What a finished batch job (closeout.batches' BatchJob) tells the metrics."""

    action: str
    started_at: datetime | None
    finished_at: datetime | None
    succeeded: int
    failed: int
    skipped: int


def observe_batch_finished(job: FinishedJob) -> None:
    batch_jobs.labels(action=job.action).inc()
    if job.started_at and job.finished_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
        batch_duration.labels(action=job.action).observe(seconds)
    outcomes = {"succeeded": job.succeeded, "failed": job.failed, "skipped": job.skipped}
    for outcome, n in outcomes.items():
        if n:
            batch_items.labels(action=job.action, outcome=outcome).inc(n)


def process_registry() -> CollectorRegistry:
    """What this process (or, in multiprocess mode, every worker) counted."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY
