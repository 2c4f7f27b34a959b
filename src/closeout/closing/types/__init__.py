"""What closes each document type (结案规则): its rules and what a close releases, one module
per type (the type's events and measures are in `closeout.documents.types`). The list of types
is `closeout.core.doctypes`; `close_spec_for` finds a built-in type's module by its code, and
`close_spec_register` adds the rules of a type registered later."""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from django.db.models import Expression
from django.utils.translation import gettext_noop

from closeout.closing.rules import Rule
from closeout.core.errors import NotFound
from closeout.documents.models import DocType
from closeout.documents.types import spec_for


@dataclass(frozen=True)
class CloseSpec:
    rules: tuple[Rule, ...]
    # Per line: the quantity and value a close releases from commitments and open value.
    released_qty: Callable[[], Expression]
    released_value: Callable[[], Expression]

    def rule(self, code: str) -> Rule:
        for rule in self.rules:
            if rule.code == code:
                return rule
        raise NotFound(
            gettext_noop("no rule '%(code)s'"), details={"rule": code}, params={"code": code}
        )


_REGISTRY: dict[str, CloseSpec] = {}


def close_spec_register(doc_type: str, spec: CloseSpec) -> None:
    """Register the close rules of a type registered with `documents.types.spec_register`."""
    spec_for(doc_type)
    _REGISTRY[doc_type] = spec


def close_spec_unregister(doc_type: str) -> None:
    _REGISTRY.pop(doc_type, None)


def close_spec_for(doc_type: str) -> CloseSpec:
    """The close rules of `doc_type` (an unknown type is refused as `spec_for` refuses it): a
    built-in type's are `CLOSE` in the module named by its code."""
    spec_for(doc_type)
    if doc_type not in _REGISTRY:
        _REGISTRY[doc_type] = import_module(f"{__name__}.{DocType(doc_type).value}").CLOSE
    return _REGISTRY[doc_type]
