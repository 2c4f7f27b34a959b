"""The committed message catalogues: every workbench string has a Chinese translation, and the
compiled .mo files (committed so a fresh clone needs no gettext tools) match the .po sources."""

import gettext
import re
from pathlib import Path

import closeout

LOCALE = Path(closeout.__file__).parent / "locale"


def _text(quoted: str) -> str:
    raw = "".join(re.findall(r'"(.*)"', quoted))
    return raw.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")


def _entries(po: Path) -> list[tuple[str | None, str]]:
    """(context, msgid) of every live entry."""
    text = po.read_text(encoding="utf-8")
    entries = []
    for block in text.split("\n\n")[1:]:
        if block.lstrip().startswith("#~"):
            continue  # obsolete entries
        match = re.search(r'^msgid ((?:".*"\n?)+)', block, re.MULTILINE)
        if match:
            context = re.search(r'^msgctxt ((?:".*"\n?)+)', block, re.MULTILINE)
            entries.append((_text(context.group(1)) if context else None, _text(match.group(1))))
    return entries


def test_every_string_is_translated_into_chinese_in_the_compiled_catalogue() -> None:
    po = LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po"
    with (LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    entries = _entries(po)
    assert len(entries) > 150
    untranslated = [
        msgid
        for context, msgid in entries
        if (compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)) == msgid
        and "%(n)s document" not in msgid
    ]
    assert untranslated == []
    assert compiled.ngettext("%(n)s document selected.", "%(n)s documents selected.", 3) == (
        "已选 %(n)s 张单据。"
    )


def test_the_english_catalogue_is_compiled() -> None:
    assert (LOCALE / "en" / "LC_MESSAGES" / "django.mo").stat().st_size > 0
