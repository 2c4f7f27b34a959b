"""Close and reopen one close dimension (关闭维度) of lines: by hand, by rule, and on a return.

A dimension close of a line still open as a whole writes a row of the sparse table; the close
of a line's last open dimension closes the line through the ordinary line close
(`services.execute_close`: the same released quantities, the header closing with its last
line). Reopening a dimension of a closed line reopens the line with its other dimensions still
closed. Every change is audited with the header's from/to, the dimension and the lines. This
module holds the services and their checks; the ordered writes are in `dimension_writes`, the
batch undo in `dimension_undo`.
"""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import translation
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.closing.dimension_writes import (
    DimensionResult,
    dimension_close_locked,
    dimension_reopen_locked,
)
from closeout.closing.dimensions import (
    Dimension,
    closed_dimensions,
    closed_in,
    dimension_get,
    dimensions_of,
)
from closeout.closing.models import ClosePolicy, DimensionCloseKind, ReasonAction
from closeout.closing.policies import policy_for, policy_partitions
from closeout.closing.reasons import reason_get
from closeout.closing.services import (
    AUTO_REASON,
    close_guard,
    document_lock_for,
    named,
    selected_lines,
)
from closeout.closing.states import Action, check_header_allows_lines
from closeout.core.errors import Bilingual, InvalidInput
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.services import document_lock


def _words(label: object) -> Bilingual:
    """A lazy label (a dimension's name) in English and Chinese."""
    with translation.override("en"):
        en = str(label)
    with translation.override("zh-hans"):
        return Bilingual(en, str(label))


def _lines(document: Document, line_nos: list[int] | None) -> list[Line]:
    lines = list(document.lines.select_for_update(no_key=True).order_by("line_no"))
    if line_nos is None:
        return lines
    by_no = {line.line_no: line for line in lines}
    missing = [n for n in line_nos if n not in by_no]
    if missing:
        raise InvalidInput(
            gettext_noop("%(document)s has no line %(line_nos)s"),
            params={"document": document.in_words, "line_nos": ", ".join(map(str, missing))},
            details={"field": "lines", "line_nos": missing},
        )
    return [by_no[n] for n in sorted(set(line_nos))]


def _failing_lines(document: Document, dimension: Dimension, lines: list[Line]) -> list[int]:
    policy = policy_for(document.doc_type, document.org_unit)
    return sorted(
        Line.objects.filter(pk__in=[line.pk for line in lines])
        .filter(dimension.line_failing(document.doc_type, policy))
        .values_list("line_no", flat=True)
    )


@transaction.atomic
def line_dimension_close(
    *,
    actor: AbstractBaseUser,
    document: Document,
    dimension: str,
    reason_code: str,
    remark: str = "",
    line_nos: list[int] | None = None,
    expected_version: int | None = None,
    request_id: str = "",
) -> DimensionResult:
    """Close one dimension of some lines (all open lines without `line_nos`) by hand, with a
    reason; a remark when the dimension's rules fail on a line. A line whose last open
    dimension this is closes as a whole (and the document with its last line). `request_id`
    tags the audit events (a batch's: `batch:<id>`, so the batch's undo finds its closes)."""
    document = document_lock_for(
        actor, document, Perm.CLOSE_DIRECT, expected_version=expected_version
    )
    dim = dimension_get(document.doc_type, dimension)
    reason = reason_get(reason_code, ReasonAction.CLOSE, company_id=document.company_id)
    lines = selected_lines(document, line_nos, Action.CLOSE)
    closed = closed_dimensions([line.pk for line in lines])
    if line_nos is None:
        lines = [line for line in lines if dim.code not in closed.get(line.pk, set())]
    words = {"document": named(document), "dimension": _words(dim.label)}
    for line in lines:
        if line.close_state != CloseState.OPEN or dim.code in closed.get(line.pk, set()):
            raise InvalidInput(
                gettext_noop(
                    "%(document)s line %(line)s is not open for %(dimension)s: only an open "
                    "line can close a dimension"
                ),
                params={**words, "line": line.line_no},
                details={"field": "lines", "line_no": line.line_no, "dimension": dim.code},
            )
    if not lines:
        raise InvalidInput(
            gettext_noop("%(document)s has no line open for %(dimension)s"),
            params=words,
            details={"field": "lines", "dimension": dim.code},
        )
    failing = _failing_lines(document, dim, lines)
    numbers = ", ".join(map(str, failing))
    exceptions = {
        dim.code: Bilingual(
            f"{words['dimension'].en} rules fail (lines {numbers})",
            f"{words['dimension'].zh}规则未通过（行 {numbers}）",
        )
    }
    close_guard(
        document.label, blocking={}, exceptions=exceptions if failing else {}, remark=remark
    )
    return dimension_close_locked(
        actor=actor,
        document=document,
        dim=dim,
        lines=lines,
        closed=closed,
        reason=reason.code,
        remark=remark,
        kind=DimensionCloseKind.MANUAL,
        request_id=request_id,
    )


@transaction.atomic
def line_dimension_reopen(
    *,
    actor: AbstractBaseUser,
    document: Document,
    dimension: str,
    reason_code: str,
    remark: str = "",
    line_nos: list[int],
    expected_version: int | None = None,
) -> DimensionResult:
    """Reopen one dimension of the given lines, by hand with a reason (holders of
    reopen.approve). A line closed as a whole reopens with its other dimensions closed; the
    commitment its dimension released comes back; quarantined events that may now apply do."""
    document = document_lock_for(
        actor, document, Perm.REOPEN_APPROVE, expected_version=expected_version
    )
    dim = dimension_get(document.doc_type, dimension)
    reason = reason_get(reason_code, ReasonAction.REOPEN, company_id=document.company_id)
    lines = _lines(document, line_nos)
    closed = closed_dimensions([line.pk for line in lines])
    whole = [line for line in lines if line.close_state == CloseState.CLOSED]
    for line in lines:
        if line not in whole and dim.code not in closed.get(line.pk, set()):
            raise InvalidInput(
                gettext_noop("%(document)s line %(line)s is not closed for %(dimension)s"),
                params={
                    "document": named(document),
                    "line": line.line_no,
                    "dimension": _words(dim.label),
                },
                details={"field": "lines", "line_no": line.line_no, "dimension": dim.code},
            )
    if whole:
        # A closed line reopens only under an open header: a closed document is reopened
        # (反结案) first, by its own route.
        check_header_allows_lines(document.label, document.close_state, Action.REOPEN)
    return dimension_reopen_locked(
        actor=actor,
        document=document,
        dim=dim,
        lines=lines,
        whole=whole,
        closed=closed,
        reason=reason.code,
        remark=remark,
        extra={},
    )


# --- events: a return reopens receiving (shipping) --------------------------------------------


def reopen_for_event(
    *, actor: AbstractBaseUser | None, document: Document, line: Line, kind: str, external_id: str
) -> str:
    """Before an event applies to an open line: a return on a line closed for receiving (or
    shipping) reopens that dimension when the policy says so, audited with the event. Returns
    the dimension reopened, or ''. The caller holds the document lock."""
    if line.close_state != CloseState.OPEN:
        return ""
    if not any(kind in d.reopened_by for d in dimensions_of(document.doc_type)):
        return ""
    closed = closed_dimensions([line.pk])
    for dim in dimensions_of(document.doc_type):
        if kind not in dim.reopened_by or dim.code not in closed.get(line.pk, set()):
            continue
        if not policy_for(document.doc_type, document.org_unit).return_reopens_dimension:
            return ""
        extra = {"trigger": kind, "event": external_id}
        dimension_reopen_locked(
            actor=actor,
            document=document,
            dim=dim,
            lines=[line],
            whole=[],
            closed=closed,
            reason="return_received",
            remark="",
            extra=extra,
        )
        line.refresh_from_db()
        return dim.code
    return ""


# --- by rule ---------------------------------------------------------------------------------


def _rule_candidates(
    doc_type: str, dim: Dimension, policy: ClosePolicy, scope: Q
) -> QuerySet[Line]:
    lines = (
        Line.objects.filter(
            document__doc_type=doc_type,
            document__close_state=CloseState.OPEN,
            close_state=CloseState.OPEN,
        )
        .filter(document__in=Document.objects.filter(scope))
        .exclude(closed_in(dim.code))
        .exclude(dim.line_failing(doc_type, policy))
    )
    for other in dim.after:
        lines = lines.filter(closed_in(other))
    # The rule never closes a line's last dimension: the whole line's close is the sweep's,
    # with all the type's rules (events settled, grace days …).
    others = [closed_in(d.code) for d in dimensions_of(doc_type) if d.code != dim.code]
    if others:
        lines = lines.exclude(*others)
    return lines


def dimensions_sweep(*, doc_type: str | None = None, now: datetime | None = None) -> int:
    """Close by rule every dimension whose rules pass on an open line (never a line's last
    dimension), under the policies that switch it on; one audit event per document. Returns how
    many dimension closes it wrote."""
    from closeout.closing.dimensions import DIMENSIONS

    total = 0
    for code, dims in DIMENSIONS.items():
        if doc_type and code != doc_type:
            continue
        for policy, scope in policy_partitions(code):
            if not (policy.auto_close_enabled and policy.auto_close_dimensions):
                continue
            for dim in dims:
                total += _sweep_dimension(code, dim, policy, scope)
    return total


def _sweep_dimension(doc_type: str, dim: Dimension, policy: ClosePolicy, scope: Q) -> int:
    candidates = _rule_candidates(doc_type, dim, policy, scope)
    document_ids = sorted(set(candidates.values_list("document_id", flat=True)))
    written = 0
    for document_id in document_ids:
        with transaction.atomic():
            document = document_lock(document_id)
            if document.close_state != CloseState.OPEN:
                continue
            lines = list(
                candidates.filter(document_id=document_id)
                .select_for_update(no_key=True)
                .order_by("line_no")
            )
            if not lines:
                continue
            closed = closed_dimensions([line.pk for line in lines])
            dimension_close_locked(
                actor=None,
                document=document,
                dim=dim,
                lines=lines,
                closed=closed,
                reason=AUTO_REASON,
                remark="",
                kind=DimensionCloseKind.AUTO,
            )
            written += len(lines)
    return written
