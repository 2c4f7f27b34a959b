"""What the document and close pages say before and after a click (issue 17 §4, §8): which
path a close takes (asked of the close service's own predicate), what it will release, and
the facts of a close that happened."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.utils.formats import number_format
from django.utils.translation import gettext

from closeout.batches.models import BatchJob
from closeout.batches.services import REFUSED_OUTCOMES
from closeout.closing.close_preview import ClosePreview
from closeout.closing.selectors import Checklist
from closeout.closing.services import close_path, remark_required
from closeout.documents.models import CloseState, Document, Line


@dataclass(frozen=True)
class ClosePlan:
    """The way a close of these lines goes, known before the click."""

    blocked: bool
    needs_approval: bool
    route: str
    by_policy: bool
    needs_remark: bool
    lines: int
    released_qty: Decimal
    released_value: Decimal
    currency: str

    def confirmation(self) -> str:
        """What the click will do, in one sentence of the page language."""
        params = {
            "lines": self.lines,
            "qty": number_format(self.released_qty, decimal_pos=None, force_grouping=True),
            "value": number_format(self.released_value, decimal_pos=2, force_grouping=True),
            "currency": self.currency,
        }
        if self.needs_approval:
            return (
                gettext(
                    "Submit a close request for %(lines)s line(s)? After approval it releases "
                    "quantity %(qty)s and value %(value)s %(currency)s."
                )
                % params
            )
        return (
            gettext(
                "Close %(lines)s line(s) now? This releases quantity %(qty)s and value "
                "%(value)s %(currency)s."
            )
            % params
        )


def close_plan(document: Document, checklist: Checklist, preview: ClosePreview) -> ClosePlan:
    line_nos = [p.line_no for p in preview.lines]
    path = close_path(document, checklist, line_nos)
    return ClosePlan(
        blocked=bool(checklist.blocking),
        needs_approval=path.needs_approval,
        route=path.route,
        by_policy=path.by_policy,
        needs_remark=remark_required(
            exceptions={c.rule.code: c for c in checklist.exceptions}, remark=""
        ),
        lines=len(preview.lines),
        released_qty=sum((p.released_qty for p in preview.lines), Decimal(0)),
        released_value=sum((p.released_value for p in preview.lines), Decimal(0)),
        currency=document.currency,
    )


def batch_refused(job: BatchJob) -> tuple[int, int]:
    """(documents the preview refuses, documents a run would try): a run of refused documents
    only produces failures, so the page asks before it runs the rest."""
    refused = sum(int(job.predicted.get(k, 0)) for k in REFUSED_OUTCOMES)
    skipped = int(job.predicted.get("skipped", 0))
    return refused, max(job.total - refused - skipped, 0)


@dataclass(frozen=True)
class CloseFacts:
    """Who closed a document, when, why, and what the close released."""

    by: str
    at: datetime | None
    close_date: date | None
    reason: str
    kind: str
    remark: str
    lines: int
    released_qty: Decimal
    released_value: Decimal
    released_value_company: Decimal


def close_facts(document: Document, lines: list[Line]) -> CloseFacts | None:
    if document.close_state not in (CloseState.CLOSED, CloseState.ARCHIVED):
        return None
    by = document.closed_by
    return CloseFacts(
        by=(by.get_full_name() or by.get_username()) if by else gettext("automatic close"),
        at=document.closed_at,
        close_date=document.close_date,
        reason=document.close_reason,
        kind=document.get_close_kind_display(),
        remark=document.close_remark,
        lines=len(lines),
        released_qty=sum((line.released_qty for line in lines), Decimal(0)),
        released_value=document.released_value,
        released_value_company=document.released_value_company,
    )
