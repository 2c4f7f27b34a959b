"""Batch close, reopen and request jobs (批量结案). The writes are in four modules: `create`,
`preview`, `execute` (start, dispatch, resume, cancel, work, retry, fail) and `process` (the
items of one chunk). This module keeps the old import path of all four, including the helpers
the import and undo jobs share."""

from closeout.batches.create import (
    CONNECTION_ERRORS,
    REFUSED_OUTCOMES,
    batch_create,
)
from closeout.batches.create import job_locked_for as job_locked_for
from closeout.batches.execute import (
    batch_cancel,
    batch_dispatch,
    batch_dispatch_pending,
    batch_fail,
    batch_note_retry,
    batch_raise_if_unsent,
    batch_resume,
    batch_run,
    batch_start,
    batch_work,
    reset_connection,
)
from closeout.batches.preview import DecideChunk as DecideChunk
from closeout.batches.preview import batch_preview
from closeout.batches.preview import close_outcome as close_outcome
from closeout.batches.process import item_mark as item_mark
from closeout.batches.process import lock_documents

__all__ = [
    "CONNECTION_ERRORS",
    "REFUSED_OUTCOMES",
    "batch_cancel",
    "batch_create",
    "batch_dispatch",
    "batch_dispatch_pending",
    "batch_fail",
    "batch_note_retry",
    "batch_preview",
    "batch_raise_if_unsent",
    "batch_resume",
    "batch_run",
    "batch_start",
    "batch_work",
    "lock_documents",
    "reset_connection",
]
