"""Choice labels written "中文 english" (one label, both languages): the part for a language."""

ZH = "zh-hans"


def label_in(label: object, lang: str) -> str:
    zh, _, en = str(label).partition(" ")
    return zh if lang == ZH else en
