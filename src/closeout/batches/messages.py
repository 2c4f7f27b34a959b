"""The message of a batch item's run, kept as a gettext msgid with its parameters (or its two
renderings) in `BatchItem.params["run_message"]`, so the batch page shows it in the reader's
language; `BatchItem.message` keeps the English text the API, the CSV and the logs read."""

from typing import Any

from django.utils import translation

from closeout.core.errors import Bilingual, DomainError


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
    if isinstance(message, Bilingual):
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
