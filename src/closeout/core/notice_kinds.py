"""The kinds of notification (通知类型): one enum for every app that sends one (access sends
grant notices and sits below `notifications`, so the list lives here); each kind's texts and
context keys are in `notifications.catalog`."""

from enum import StrEnum


class NoticeKind(StrEnum):
    REQUEST_SUBMITTED = "request_submitted"
    REQUEST_APPROVED = "request_approved"
    REQUEST_REJECTED = "request_rejected"
    REQUEST_EXECUTED = "request_executed"
    REQUEST_WITHDRAWN = "request_withdrawn"
    EXECUTION_REFUSED = "execution_refused"
    AUTO_CLOSE_DIGEST = "auto_close_digest"
    GRANT_EXPIRING = "grant_expiring"
    GRANT_EXPIRED = "grant_expired"
    APPROVAL_OVERDUE = "approval_overdue"
    ALERT_DIGEST = "alert_digest"
    DIAGNOSTICS_PROBLEMS = "diagnostics_problems"
