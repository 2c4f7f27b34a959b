"""What other apps do when a batch job has finished, registered when they start.

Batches sit below the reports app: reports verifies a finished batch (S16) by registering
`on_batch_finished` in its AppConfig.ready(), so batches never import reports."""

from collections.abc import Callable

BatchFinished = Callable[[int], None]

_ON_FINISHED: list[BatchFinished] = []


def on_batch_finished(handler: BatchFinished) -> None:
    """Call `handler(job_id)` inside the transaction that marks a job done (once per handler)."""
    if handler not in _ON_FINISHED:
        _ON_FINISHED.append(handler)


def batch_finished(job_id: int) -> None:
    for handler in _ON_FINISHED:
        handler(job_id)
