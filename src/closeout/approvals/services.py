"""Close and reopen requests through approval routes (S9, S12), with separation of duties (S14).

The writes live in `submit` (close/reopen requests, resubmission), `attachments` and `decide`
(approve, reject, withdraw, batch decisions, overdue escalation); this module keeps the old
import path of all three for callers outside the app.
"""

from closeout.approvals.attachments import attachment_add
from closeout.approvals.decide import (
    BatchItemResult,
    approvals_overdue_notify,
    close_request_approve,
    close_request_reject,
    close_request_withdraw,
    close_requests_decide_batch,
)
from closeout.approvals.selectors import period_is_closed
from closeout.approvals.submit import (
    close_request_resubmit,
    close_request_submit,
    reopen_request_submit,
)

__all__ = [
    "BatchItemResult",
    "approvals_overdue_notify",
    "attachment_add",
    "close_request_approve",
    "close_request_reject",
    "close_request_resubmit",
    "close_request_submit",
    "close_request_withdraw",
    "close_requests_decide_batch",
    "period_is_closed",
    "reopen_request_submit",
]
