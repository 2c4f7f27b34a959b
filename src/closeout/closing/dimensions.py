"""Close dimensions (关闭维度), declared once per document type.

A purchase-order line closes for receiving (收货关闭), invoicing (开票关闭) and payment (付款关闭)
separately, a sales-order line for shipping, invoicing and collection; the other types keep one
dimension, the whole line. Each dimension says which business events it governs (an event of a
closed dimension is quarantined), which of the type's rules must pass for the rule close (the
same `closing.rules.Rule` objects the sweep and the checklist use: one definition), which
dimensions must be closed before it closes by rule, and whether its close releases the line's
open quantity from the commitments (on order, reserved).

A line is closed as a whole exactly when all its dimensions are: the last one closes the line
through the ordinary line close. A closed line counts as closed in every dimension.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_noop, pgettext_lazy

from closeout.closing.models import ClosePolicy, LineDimensionClose
from closeout.closing.rules import Rule
from closeout.closing.types import close_spec_for
from closeout.core.errors import Bilingual, InvalidInput
from closeout.documents.models import (
    CloseState,
    DocType,
    Document,
    EventKind,
    Line,
    doc_type_words,
)


@dataclass(frozen=True)
class Dimension:
    code: str
    # The dimension's state when closed, e.g. 收货关闭 (closed for receiving).
    closed_label: object
    label: object
    events: frozenset[EventKind]
    # Codes of the type's rules that must all pass on the line for the rule close.
    rule_codes: tuple[str, ...]
    # Dimensions that must already be closed before this one closes by rule.
    after: tuple[str, ...] = ()
    releases_commitment: bool = False
    # An event of this kind on a line closed in this dimension reopens it (policy switch).
    reopened_by: frozenset[EventKind] = frozenset()

    def rules(self, doc_type: str) -> tuple[Rule, ...]:
        close = close_spec_for(doc_type)
        return tuple(close.rule(code) for code in self.rule_codes)

    def line_failing(self, doc_type: str, policy: ClosePolicy) -> Q:
        """True on Line rows where one of the dimension's rules fails (policy switches apply)."""
        failing = Q(pk__in=[])
        settings = policy.rule_settings or {}
        for rule in self.rules(doc_type):
            if settings.get(rule.code, {}).get("enabled", True) is False:
                continue
            failing |= rule.failing(policy)
        return failing


RECEIVING = Dimension(
    "receiving",
    pgettext_lazy("close dimension", "closed for receiving"),
    pgettext_lazy("close dimension", "receiving"),
    frozenset({EventKind.RECEIPT, EventKind.RETURN}),
    ("received", "not_over_received"),
    releases_commitment=True,
    reopened_by=frozenset({EventKind.RETURN}),
)
SHIPPING = Dimension(
    "shipping",
    pgettext_lazy("close dimension", "closed for shipping"),
    pgettext_lazy("close dimension", "shipping"),
    frozenset({EventKind.SHIPMENT, EventKind.RETURN}),
    ("shipped", "not_over_shipped", "no_open_returns"),
    releases_commitment=True,
    reopened_by=frozenset({EventKind.RETURN}),
)
INVOICING = Dimension(
    "invoicing",
    pgettext_lazy("close dimension", "closed for invoicing"),
    pgettext_lazy("close dimension", "invoicing"),
    frozenset({EventKind.INVOICE, EventKind.CREDIT_NOTE}),
    ("invoice_qty_match", "invoice_amount_match"),
)
PAYMENT = Dimension(
    "payment",
    pgettext_lazy("close dimension", "closed for payment"),
    pgettext_lazy("close dimension", "payment"),
    frozenset({EventKind.PAYMENT}),
    ("paid",),
    after=("invoicing",),
)
COLLECTION = Dimension(
    "collection",
    pgettext_lazy("close dimension", "closed for collection"),
    pgettext_lazy("close dimension", "collection"),
    frozenset({EventKind.PAYMENT}),
    ("collected",),
    after=("invoicing",),
)

DIMENSIONS: dict[str, tuple[Dimension, ...]] = {
    DocType.PURCHASE_ORDER: (RECEIVING, replace(INVOICING, after=("receiving",)), PAYMENT),
    DocType.SALES_ORDER: (SHIPPING, replace(INVOICING, after=("shipping",)), COLLECTION),
}
# The dimensions whose close takes the line's open quantity off the commitments.
RELEASING = tuple(
    sorted({d.code for dims in DIMENSIONS.values() for d in dims if d.releases_commitment})
)


def dimensions_of(doc_type: str) -> tuple[Dimension, ...]:
    """The close dimensions of a type; empty for a type whose only dimension is the line."""
    return DIMENSIONS.get(doc_type, ())


def dimension_get(doc_type: str, code: str) -> Dimension:
    for dimension in dimensions_of(doc_type):
        if dimension.code == code:
            return dimension
    allowed = [d.code for d in dimensions_of(doc_type)]
    if not allowed:
        raise InvalidInput(
            gettext_noop(
                "a %(doc_type)s line has no close dimensions of its own: close the line instead"
            ),
            details={"field": "dimension", "allowed": []},
            params={"doc_type": doc_type_words(doc_type)},
        )
    raise InvalidInput(
        gettext_noop(
            "unknown close dimension '%(code)s' for a %(doc_type)s; use one of: %(allowed)s"
        ),
        details={"field": "dimension", "allowed": allowed},
        params={"code": code, "doc_type": doc_type_words(doc_type), "allowed": ", ".join(allowed)},
    )


def closed_dimensions(line_ids: list[int]) -> dict[int, set[str]]:
    """Per line, the dimensions closed while it is open (rows of the sparse table)."""
    result: dict[int, set[str]] = {}
    rows = LineDimensionClose.objects.filter(line_id__in=line_ids).values_list(
        "line_id", "dimension"
    )
    for line_id, code in rows:
        result.setdefault(line_id, set()).add(code)
    return result


def dimension_states(doc_type: str, line: Line, closed: set[str]) -> dict[str, str]:
    """Each dimension's state on a line: closed when the line is closed (or archived) or the
    dimension is; open otherwise."""
    whole = line.close_state in (CloseState.CLOSED, CloseState.ARCHIVED)
    return {
        d.code: CloseState.CLOSED if whole or d.code in closed else CloseState.OPEN
        for d in dimensions_of(doc_type)
    }


def quarantine_reason(doc_type: str, line: Line, kind: str) -> str:
    """Why an event of `kind` cannot apply to an open line: the dimension it belongs to is
    closed; empty when it may apply."""
    if not any(kind in d.events for d in dimensions_of(doc_type)):
        return ""
    closed = closed_dimensions([line.pk]).get(line.pk, set())
    for dimension in dimensions_of(doc_type):
        if kind in dimension.events and dimension.code in closed:
            return (
                f"line {line.line_no} is closed for {dimension.code} "
                f"({_in_zh(dimension.closed_label)})"
            )
    return ""


def dimension_words(dim: Dimension) -> Bilingual:
    """A dimension in a message: its code in English (as the API said), its name in Chinese."""
    return Bilingual(dim.code, _in_zh(dim.label))


def _in_zh(text: object) -> str:
    from django.utils import translation

    with translation.override("zh-hans"):
        return str(text)


def closed_in(dimension: str) -> Exists:
    """True on Line rows closed in `dimension` while open (the line's own close aside)."""
    return Exists(LineDimensionClose.objects.filter(line_id=OuterRef("pk"), dimension=dimension))


def releasing_closed() -> Exists:
    """True on Line rows closed in a dimension that releases the commitment."""
    return Exists(
        LineDimensionClose.objects.filter(line_id=OuterRef("pk"), dimension__in=RELEASING)
    )


def lines_with_dimensions(
    document: Document, lines: Iterable[Line]
) -> list[tuple[Line, dict[str, str]]]:
    """The document's lines, each with its state per dimension (one query for all)."""
    listed = list(lines)
    closed = closed_dimensions([line.pk for line in listed])
    return [
        (line, dimension_states(document.doc_type, line, closed.get(line.pk, set())))
        for line in listed
    ]
