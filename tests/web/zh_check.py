"""What a page rendered in Chinese must not show: an English sentence, or a raw code from a
known list (document types, close/request/batch states, verdicts, batch outcomes, reason
codes, audit actions, severities, input field codes). Used by the page walks (client and
browser)."""

import re
from html.parser import HTMLParser

from closeout.access.models import Role
from closeout.approvals.models import Decision, RequestState
from closeout.audit.models import AuditAction
from closeout.batches.messages import OUTCOME_WORDS as OUTCOMES
from closeout.batches.models import BatchAction, BatchState, ItemState
from closeout.closing.models import ReasonCode, Severity
from closeout.core.fields import FIELD_NAMES
from closeout.documents.models import CloseKind, CloseState, DocType

# Text inside these elements is a deliberate identifier (a rule code next to its name) or not
# shown at all.
SKIPPED_ELEMENTS = {"script", "style", "code", "kbd", "samp", "template", "noscript"}
SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
VERDICTS = {"ready", "warning", "exception", "blocked", "not_due"}

# Three or more English words in a row is a sentence nobody translated.
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z']+(?:[ ,;:]+[A-Za-z][a-z']+){2,}\b")
SNAKE_CASE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
# Words that may stand alone in a Chinese page: the product, formats, units of measure.
ALLOWED_WORDS = {"closeout", "csv", "xlsx", "json", "api", "eta", "webhook", "erp", "id", "pcs"}


def raw_codes() -> set[str]:
    """Every code a person must never read on a page, from the enums and the reason table."""
    codes: set[str] = set(VERDICTS) | set(OUTCOMES)
    for enum in (
        DocType,
        CloseState,
        CloseKind,
        RequestState,
        Decision,
        BatchState,
        BatchAction,
        ItemState,
        Severity,
    ):
        codes.update(str(v) for v in enum.values)
    codes.update(a.name.lower() for a in AuditAction)
    codes.update(ReasonCode.objects.values_list("code", flat=True))
    codes.update(Role.objects.values_list("code", flat=True))
    # Input fields named inside messages (details.field keeps the code for programs).
    codes.update(FIELD_NAMES)
    return codes


VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}


class _Text(HTMLParser):
    """The text a reader sees. Skipped: identifiers (SKIPPED_ELEMENTS) and text marked as
    English on purpose (`lang="en"`: the English name of a reason code being configured)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0  # depth inside a skipped element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_ELEMENTS:
            if not self.skipping:
                self.parts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)
            return
        english = any(k == "lang" and (v or "").startswith("en") for k, v in attrs)
        if self.skipping or tag in SKIPPED_ELEMENTS or english:
            self.skipping += 1
            return
        self.parts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and tag not in VOID_ELEMENTS:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.parts.append(data.strip())


def visible_texts(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.parts


# Shown on purpose, for the people who act on them: a permission code next to its name
# ("导入 (import.run)") and a command line to type ("closeout archive run --dry-run").
LITERALS = re.compile(r"\b[a-z]+\.[a-z_]+\b|\bcloseout(?: [a-z][a-z-]*| --[a-z-]+)+")


def problems(html: str, *, codes: set[str], data: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """What is wrong with a Chinese page: each English run or raw code, with its text. `data`
    holds values people typed or the ERP sent (names, remarks): they are shown as they are."""
    return text_problems(visible_texts(html), codes=codes, data=data)


def text_problems(
    texts: list[str],
    *,
    codes: set[str],
    data: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """What is wrong with texts a Chinese reader sees (a page's, an export's cells)."""
    found: list[str] = []
    for text in texts:
        for value in sorted(data, key=len, reverse=True):
            if value and value in text:
                text = text.replace(value, " ")
        text = LITERALS.sub(" ", text)
        found.extend(
            f"English: “{m.group(0)}” in “{text[:120]}”" for m in ENGLISH_RUN.finditer(text)
        )
        found.extend(
            f"raw code: “{word}” in “{text[:120]}”"
            for word in re.findall(r"\b[a-z][a-z_]*[a-z]\b", text)
            if (word in codes or SNAKE_CASE.fullmatch(word)) and word not in ALLOWED_WORDS
        )
    return found
