"""Registry of document types: each type is one module saying how business events move its
lines' measures (which rules decide its close, and what a close releases, are in
`closeout.closing.types`)."""

from dataclasses import dataclass, field
from enum import StrEnum
from importlib import import_module

from django.utils.translation import gettext_noop

from closeout.core.doctypes import (
    doc_type_codes,
    doc_type_known,
    doc_type_register,
    doc_type_unregister,
)
from closeout.core.errors import Bilingual, InvalidInput
from closeout.documents.models import DocType, EventKind


class Op(StrEnum):
    ADD = "add"
    SUBTRACT = "subtract"
    SET = "set"
    # Subtract but never below zero (an open-returns counter cleared by a credit note).
    CLEAR = "clear"


@dataclass(frozen=True)
class Effect:
    """Event `source` value (quantity or amount) applied with `op` to a line `field`."""

    field: str
    source: str
    op: Op = Op.ADD


# What each line measure is called in messages, unless a type names it its own way (a purchase
# order's fulfilled quantity is what was received).
MEASURE_LABELS = {
    "fulfilled_qty": "fulfilled quantity",
    "returns_open_qty": "open returns",
    "invoiced_qty": "invoiced quantity",
    "invoiced_amount": "invoiced amount",
    "settled_amount": "settled amount",
    "counted_qty": "counted quantity",
    "adjusted_qty": "adjusted quantity",
    "actual_cost": "actual cost",
}
# The only line measure that may go below zero: a stock adjustment is signed by nature (a count
# below book needs a negative one). Every other measure counts or sums something and an event
# that would drive it below zero is refused (documents.services, after applying the effect).
SIGNED_MEASURES = frozenset({"adjusted_qty"})


class Commitment(StrEnum):
    ON_ORDER = "on_order"
    RESERVED = "reserved"


@dataclass(frozen=True)
class DocTypeSpec:
    code: str  # a DocType, or a registered type's code
    label_zh: str
    label_en: str
    effects: dict[EventKind, tuple[Effect, ...]]
    commitment: Commitment | None = None
    # Events about the whole document rather than one line.
    header_events: frozenset[EventKind] = field(default_factory=frozenset)
    # This type's own names for line measures in messages (see MEASURE_LABELS).
    measure_names: dict[str, str] = field(default_factory=dict)

    def label(self, lang: str = "zh") -> str:
        return self.label_en if lang.startswith("en") else self.label_zh

    def measure_label(self, name: str) -> str:
        return self.measure_names.get(name) or MEASURE_LABELS.get(name, name)


_REGISTRY: dict[str, DocTypeSpec] = {}


def spec_register(spec: DocTypeSpec) -> None:
    """Register a type whose spec lives outside this package (a plugin or a test): its code
    joins the one list of types (`closeout.core.doctypes`)."""
    doc_type_register(spec.code, Bilingual(spec.label_en, spec.label_zh))
    _REGISTRY[spec.code] = spec


def spec_unregister(code: str) -> None:
    _REGISTRY.pop(code, None)
    doc_type_unregister(code)


def spec_for(doc_type: str) -> DocTypeSpec:
    """The spec of `doc_type`: a built-in type's is `SPEC` in the module named by its code."""
    if not doc_type_known(doc_type):
        codes = doc_type_codes()
        raise InvalidInput(
            gettext_noop("unknown document type '%(doc_type)s'; use one of: %(types)s"),
            details={"field": "doc_type", "allowed": codes},
            params={"doc_type": doc_type, "types": ", ".join(codes)},
        )
    if doc_type not in _REGISTRY:
        _REGISTRY[doc_type] = import_module(f"{__name__}.{DocType(doc_type).value}").SPEC
    return _REGISTRY[doc_type]


def all_specs() -> list[DocTypeSpec]:
    return [spec_for(code) for code in doc_type_codes()]
