"""Domain errors: one family, each with a stable code, a plain message and structured details.

The API maps them to JSON {"code", "message", "details"}; pages and commands show the message.
"""

from collections.abc import Mapping
from typing import Any

from django.utils import translation


def _render(msgid: str, params: Mapping[str, object], language: str) -> str:
    with translation.override(language):
        return translation.gettext(msgid) % {k: str(v) for k, v in params.items()}


class Bilingual:
    """A message parameter that reads differently in English and in Chinese (a rule's label, a
    list of failing rules); rendered in the language active when the message is."""

    def __init__(self, en: str, zh: str) -> None:
        self.en, self.zh = en, zh

    def __str__(self) -> str:
        return self.zh if (translation.get_language() or "zh").startswith("zh") else self.en


def bilingual_label(label: object) -> Bilingual:
    """A label (a lazy gettext choice label: "open" / 未结案) rendered in each language."""
    with translation.override("en"):
        en = str(label)
    with translation.override("zh-hans"):
        zh = str(label)
    return Bilingual(en, zh)


def code_words(code: str, label: object) -> Bilingual:
    """A stored code as a person reads it: the code itself in English messages (as the API and
    logs always said), its choice label in Chinese ("入库")."""
    return Bilingual(code, bilingual_label(label).zh)


def document_words(doc_type: str, number: str, type_label: object) -> Bilingual:
    """A document as people name it: "purchase_order PO-1" in English messages (as the API
    and logs always said), "采购订单 PO-1" in Chinese."""
    return Bilingual(f"{doc_type} {number}", f"{bilingual_label(type_label).zh} {number}")


def bilingual_join(parts: list[object], *, en_sep: str = "; ", zh_sep: str = "；") -> Bilingual:
    """Parts (lazy labels, Bilingual) joined, in each language."""
    texts = []
    for language, sep in (("en", en_sep), ("zh-hans", zh_sep)):
        with translation.override(language):
            texts.append(sep.join(str(p) for p in parts))
    return Bilingual(texts[0], texts[1])


class DomainError(Exception):
    """`message` is plain English; given `params`, it is a gettext msgid (mark it with
    gettext_noop) rendered with them in English (`message`), in Chinese (`details["message_zh"]`)
    and in the page language (`text()`): one mechanism for every language a person reads."""

    code = "domain_error"
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.msgid = message if params is not None else ""
        self.params = dict(params or {})
        if params is not None:
            message = _render(self.msgid, self.params, "en")
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if params is not None:
            self.details.setdefault("message_zh", _render(self.msgid, self.params, "zh-hans"))

    def text(self) -> str:
        """The message in the active language (English where no translation exists)."""
        language = translation.get_language() or "zh-hans"
        if self.msgid:
            return _render(self.msgid, self.params, language)
        if language.startswith("zh") and self.details.get("message_zh"):
            return str(self.details["message_zh"])
        return self.message

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


class Message:
    """A text for people that is not an error (a verdict, a finding): a gettext msgid (marked
    with gettext_noop) and its params. `en` is the English text for logs, the API and stored
    records; `str()` reads it in the active language, so a page shows it in the page's."""

    def __init__(self, msgid: str, **params: object) -> None:
        self.msgid, self.params = msgid, params

    @property
    def en(self) -> str:
        return _render(self.msgid, self.params, "en")

    def __str__(self) -> str:
        return _render(self.msgid, self.params, translation.get_language() or "zh-hans")

    def __repr__(self) -> str:
        return f"Message({self.en!r})"


class ErrorWords:
    """A domain error as a parameter of a `Message`: read in the language the message is."""

    def __init__(self, error: DomainError) -> None:
        self.error = error

    def __str__(self) -> str:
        return self.error.text()
