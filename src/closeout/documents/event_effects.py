"""What a business event does to its line: the measures it moves by its document type's
effects (`documents.types`), each checked to fit its column, and the one guard of every type
and kind that no counting measure goes below zero. `event_effect` only sets the values in
memory (the set-based post saves them itself); `event_apply` saves the line as well."""

from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.core.errors import EventRefused
from closeout.core.inputs import check_fits
from closeout.core.money import plain
from closeout.documents.document_values import column_of
from closeout.documents.models import BusinessEvent, Document, EventKind, Line
from closeout.documents.types import SIGNED_MEASURES, DocTypeSpec, Op, spec_for


def event_apply(event: BusinessEvent, document: Document, line: Line | None) -> dict[str, Any]:
    """Move the measures; returns before/after for the audit event. Refused (EventRefused,
    nothing written) when the event would drive a measure below zero."""
    changes = event_effect(event, document, line)
    if line is not None and event.kind != EventKind.ACCEPTANCE:
        line.save(update_fields=list(changes))
    return changes


def event_effect(event: BusinessEvent, document: Document, line: Line | None) -> dict[str, Any]:
    """The event's effect on the line's measures (or the document's acceptance), set on the
    objects in memory only, saved by the caller; before/after for the audit event. Refused
    (EventRefused, nothing changed) when it would drive a measure below zero."""
    spec = spec_for(document.doc_type)
    if event.kind == EventKind.ACCEPTANCE:
        before = document.accepted_on
        document.accepted_on = timezone.localdate(event.occurred_at)
        return {"accepted_on": {"before": before, "after": document.accepted_on}}
    assert line is not None  # noqa: S101 (validated when the event was posted)
    effects = spec.effects[EventKind(event.kind)]
    changes: dict[str, Any] = {}
    for effect in effects:
        value: Decimal = getattr(event, effect.source)
        before = getattr(line, effect.field)
        current = before or Decimal(0)
        if effect.op is Op.SET:
            after = value
        elif effect.op is Op.ADD:
            after = current + value
        elif effect.op is Op.SUBTRACT:
            after = current - value
        else:
            after = max(current - value, Decimal(0))
        # Many events add up: the line's measure must still fit its column.
        check_fits(
            after,
            column_of(Line, effect.field),
            field=effect.source,
            what=f"line {line.line_no} {effect.field} {current:f} → {after:f}",
            rounded=True,
        )
        changes[effect.field] = {"before": before, "after": after}
    _refuse_below_zero(spec, document, line, event, changes)
    for name, change in changes.items():
        setattr(line, name, change["after"])
    return changes


def _refuse_below_zero(
    spec: DocTypeSpec,
    document: Document,
    line: Line,
    event: BusinessEvent,
    changes: dict[str, Any],
) -> None:
    """One guard for every type and event kind: after an event's effect, no measure that counts
    or sums something (all but the signed stock adjustment) may have moved below zero. A return
    beyond what was received, a credit note beyond what was invoiced are refused here."""
    sources = {e.field: e.source for e in spec.effects[EventKind(event.kind)]}
    failing = {
        name: change
        for name, change in changes.items()
        if name not in SIGNED_MEASURES
        and change["after"] < 0
        and change["after"] < (change["before"] or Decimal(0))
    }
    if not failing:
        return
    kind = str(event.kind).replace("_", " ")
    parts = [
        f"{sources[name]} {plain(getattr(event, sources[name]))} is more than "
        f"{spec.measure_label(name)} {plain(change['before'] or Decimal(0))} "
        f"(it would become {plain(change['after'])})"
        for name, change in failing.items()
    ]
    raise EventRefused(
        gettext_noop(
            "%(document)s line %(line_no)s: %(kind)s %(external_id)s of %(parts)s; refused: a "
            "line's measures cannot go below zero (post what it depends on first, or correct the "
            "event)"
        ),
        details={
            "document": document.label,
            "line_no": line.line_no,
            "event": event.external_id,
            "kind": event.kind,
            "field": sources[next(iter(failing))],
            "measures": {
                name: {
                    "label": spec.measure_label(name),
                    "before": plain(change["before"] or Decimal(0)),
                    sources[name]: plain(getattr(event, sources[name])),
                    "after": plain(change["after"]),
                }
                for name, change in failing.items()
            },
        },
        params={
            "document": document.in_words,
            "line_no": line.line_no,
            "kind": kind,
            "external_id": event.external_id,
            "parts": ", and of ".join(parts),
        },
    )
