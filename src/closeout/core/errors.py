"""Domain errors: one family, each with a stable code, a plain message and structured details.

The API maps them to JSON {"code", "message", "details"}; pages and commands show the message.
"""

from typing import Any


class DomainError(Exception):
    code = "domain_error"
    http_status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 422


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class PermissionDenied(DomainError):
    code = "permission_denied"
    http_status = 403


class InvalidTransition(DomainError):
    code = "invalid_transition"
    http_status = 409


class DocumentLocked(DomainError):
    code = "document_locked"
    http_status = 409


class StaleVersion(DomainError):
    """The caller changed a document it read at an older version (optimistic concurrency)."""

    code = "precondition_failed"
    http_status = 412


class RuleFailed(DomainError):
    code = "rule_failed"
    http_status = 409


class ImportRowInvalid(DomainError):
    code = "import_row_invalid"
    http_status = 422


class Conflict(DomainError):
    """The request clashes with what is stored (a name or external id already taken)."""

    code = "conflict"
    http_status = 409


class EventConflict(Conflict):
    """An external id sent again with other values than the event stored under it: an external
    id names one event, so this is neither a duplicate nor a new event. `details["fields"]`
    names each field that differs with its stored and sent value."""

    code = "event_conflict"


class EventRefused(DomainError):
    """A business event that would drive a line measure below zero (a return beyond what was
    received, a credit note beyond what was invoiced): refused, stored nowhere, so the same
    external id can be sent again once the data is right."""

    code = "event_refused"
    http_status = 409


class ServiceUnavailable(DomainError):
    """A service the request needs (the task broker) does not answer; nothing was lost and
    the work is picked up when it answers again."""

    code = "service_unavailable"
    http_status = 503


class BrokerUnavailable(ServiceUnavailable):
    code = "broker_unavailable"


class CompanyAmbiguous(DomainError):
    """A document number found in several companies the caller may see, and no company given:
    `details["companies"]` lists their codes; the caller names one (company=CODE)."""

    code = "company_ambiguous"
    http_status = 409
