"""Labels of code-defined choices are gettext strings (issue 14): rendered in the active
language like any other text. `label_in` renders one in a given language (e-mails and
notifications written in the recipient's language)."""

from django.utils import translation

ZH = "zh-hans"


def label_in(label: object, lang: str) -> str:
    """`label` (a lazy gettext label) in the language `lang`."""
    with translation.override(lang):
        return str(label)
