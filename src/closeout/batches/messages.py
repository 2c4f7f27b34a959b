"""The message of a batch item's run, kept as a gettext msgid with its parameters (or its two
renderings) in `BatchItem.params["run_message"]`, so the batch page shows it in the reader's
language; `BatchItem.message` keeps the English text the API, the CSV and the logs read."""

from collections.abc import Callable
from typing import Any

from django.utils import translation
from django.utils.translation import pgettext

from closeout.core.errors import Bilingual, DomainError, Message


def _in(language: str, value: object) -> str:
    with translation.override(language):
        return str(value)


def _param(value: object) -> object:
    """A parameter as JSON: plain when it reads the same in both languages, else both texts."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    en, zh = _in("en", value), _in("zh-hans", value)
    return en if en == zh else {"en": en, "zh": zh}


def message_record(message: object) -> dict[str, Any] | None:
    """What to store for a run message; None when it reads the same in every language."""
    if isinstance(message, DomainError):
        if message.msgid:
            return {
                "msgid": message.msgid,
                "params": {k: _param(v) for k, v in message.params.items()},
            }
        zh = message.details.get("message_zh")
        return {"en": message.message, "zh": str(zh)} if zh else None
    if isinstance(message, Message):
        return message_of(message.msgid, message.params)
    if isinstance(message, Bilingual) and message.en != message.zh:
        return {"en": message.en, "zh": message.zh}
    return None


def message_of(msgid: str, params: dict[str, object]) -> dict[str, Any]:
    """The record of a message built here (not raised): a msgid marked with gettext_noop and
    its parameters (a parameter may be a Bilingual phrase, stored in both languages)."""
    return {"msgid": msgid, "params": {k: _param(v) for k, v in params.items()}}


def message_english(message: object) -> str:
    """The English text of a run message (what `BatchItem.message` holds)."""
    if isinstance(message, DomainError):
        return message.message
    if isinstance(message, Bilingual | Message):
        return message.en
    return str(message)


def message_text(record: dict[str, Any], language: str | None = None) -> str:
    """A stored run message in `language` (the active one by default)."""
    language = language or translation.get_language() or "zh-hans"
    half = "zh" if language.startswith("zh") else "en"
    if "msgid" not in record:
        return str(record.get(half) or record.get("en") or "")
    params = {
        k: (v.get(half, v.get("en", "")) if isinstance(v, dict) else v)
        for k, v in record.get("params", {}).items()
    }
    with translation.override(language):
        return translation.gettext(str(record["msgid"])) % params


def stored_text(text: str, record: Any) -> str:
    """A stored English text (`BatchJob.error`) in the active language, from the record kept
    beside it; the text itself where no record was kept (rows written before the record)."""
    if text and isinstance(record, dict) and record:
        return message_text(record)
    return text


def item_message_set(item: Any, message: object) -> None:
    """Set a batch item's run message: English in `message`, the record in its params."""
    item.message = message_english(message)[:2000]
    record = message_record(message)
    if record is not None:
        item.params = {**(item.params or {}), "run_message": record}


# Outcomes of a batch preview and of its items (BatchItem.predicted / outcome).
OUTCOME_WORDS: dict[str, Callable[[], str]] = {
    "would_close": lambda: pgettext("batch outcome", "would close"),
    "would_close_dim": lambda: pgettext("batch outcome", "would close the dimension"),
    "would_reopen": lambda: pgettext("batch outcome", "would reopen"),
    "would_approve": lambda: pgettext("batch outcome", "would approve"),
    "would_reject": lambda: pgettext("batch outcome", "would reject"),
    "would_request": lambda: pgettext("batch outcome", "would request"),
    "needs_approval": lambda: pgettext("batch outcome", "needs approval"),
    "needs_remark": lambda: pgettext("batch outcome", "needs a remark"),
    "refused": lambda: pgettext("batch outcome", "refused"),
    "skipped": lambda: pgettext("batch outcome", "skipped"),
    "closed": lambda: pgettext("batch outcome", "closed"),
    "close_dimension": lambda: pgettext("batch outcome", "dimension closed"),
    "reopened": lambda: pgettext("batch outcome", "reopened"),
    "requested": lambda: pgettext("batch outcome", "requested"),
    "approved": lambda: pgettext("batch outcome", "approved"),
    "rejected": lambda: pgettext("batch outcome", "rejected"),
    "executed": lambda: pgettext("batch outcome", "executed"),
    "pending": lambda: pgettext("batch outcome", "pending"),
    "done": lambda: pgettext("batch outcome", "done"),
    "failed": lambda: pgettext("batch outcome", "failed"),
    "error": lambda: pgettext("batch outcome", "error"),
    # A reopen, request, approve or reject batch records its action as the done outcome.
    "reopen": lambda: pgettext("batch outcome", "reopened"),
    "request": lambda: pgettext("batch outcome", "requested"),
    "approve": lambda: pgettext("batch outcome", "approved"),
    "reject": lambda: pgettext("batch outcome", "rejected"),
}


def outcome_words(code: str) -> str:
    """A batch outcome (or item state) in the active language; the code itself if unknown."""
    text = OUTCOME_WORDS.get(code)
    return text() if text else code


def outcome_phrase(code: str) -> Bilingual:
    """A batch outcome as a message parameter: the code in English, its name in Chinese."""
    with translation.override("zh-hans"):
        return Bilingual(code, outcome_words(code))
