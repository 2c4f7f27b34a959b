"""The id of the HTTP request (or command run) being served, for logs and audit events."""

from contextvars import ContextVar

# Set by the request middleware (and by commands that want one); empty outside a request.
current_request_id: ContextVar[str] = ContextVar("closeout_request_id", default="")
