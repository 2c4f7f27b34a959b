"""Choice labels written "中文 english" (one label, both languages): the one place that splits
them. `label_halves` finds the two halves; the rest name the half a caller wants."""

ZH = "zh-hans"


def label_halves(label: object) -> tuple[str, str] | None:
    """(Chinese, English) of a label written "未结案 open"; None for a label in one language
    (no space, an English head, or a non-English tail)."""
    text = str(label)
    head, sep, tail = text.partition(" ")
    if not sep or head.isascii() or not tail.isascii():
        return None
    return head, tail


def label_part(label: object, *, english: bool) -> str:
    """The Chinese or English half; a one-language label whole."""
    halves = label_halves(label)
    if halves is None:
        return str(label)
    return halves[1] if english else halves[0]


def label_in(label: object, lang: str) -> str:
    return label_part(label, english=lang != ZH)
