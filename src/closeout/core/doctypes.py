"""The one list of document types (单据类型). `DocType` declares the built-in types with their
labels; a type added later (a plugin, or a test) registers its code here with
`doc_type_register`. Everything that walks the types — the registries of `documents.types` and
`closing.types`, the hourly sweep of each type, command and API validation — asks
`doc_type_codes()`, so the types are listed nowhere else."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from closeout.core.errors import Bilingual


class DocType(models.TextChoices):
    PURCHASE_ORDER = "purchase_order", _("purchase order")
    SALES_ORDER = "sales_order", _("sales order")
    STOCK_COUNT = "stock_count", _("stock count")
    RECEIVABLE = "receivable", _("receivable")
    PAYABLE = "payable", _("payable")
    PROJECT_STAGE = "project_stage", _("project stage")


# Types registered at run time (code -> label in both languages), after the built-in ones.
_REGISTERED: dict[str, Bilingual] = {}


def doc_type_register(code: str, label: Bilingual) -> None:
    """Add a document type beyond `DocType` (its modules register with `documents.types` and
    `closing.types`). Registering the same code again changes nothing."""
    if code not in DocType.values:
        _REGISTERED.setdefault(code, label)


def doc_type_unregister(code: str) -> None:
    """Forget a registered type (tests that add one remove it afterwards)."""
    _REGISTERED.pop(code, None)


def doc_type_codes() -> list[str]:
    """Every document type, built-in first, in the order they were declared."""
    return [*DocType.values, *_REGISTERED]


def doc_type_known(code: object) -> bool:
    return isinstance(code, str) and (code in DocType.values or code in _REGISTERED)


def doc_type_label_lazy(code: str) -> object:
    """The type's label as declared, rendered when shown (a lazy gettext label, or both
    languages of a registered type): what `bilingual_label` needs. The code when unknown."""
    if code in DocType.values:
        return DocType(code).label
    return _REGISTERED.get(code, code)


def doc_type_label(code: str) -> str:
    """The type's label in the active language ("采购订单" / "purchase order"); the code when
    unknown."""
    if code in DocType.values:
        return str(DocType(code).label)
    label = _REGISTERED.get(code)
    return str(label) if label is not None else code


__all__ = [
    "DocType",
    "doc_type_codes",
    "doc_type_known",
    "doc_type_label",
    "doc_type_label_lazy",
    "doc_type_register",
    "doc_type_unregister",
]
