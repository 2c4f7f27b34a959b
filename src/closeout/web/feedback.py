"""The message a page shows after an action succeeded (issue 17 §4): what happened, to which
document or request, with the figures a person checks."""

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.http import HttpRequest
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext

from closeout.approvals.models import CloseRequest, RequestState
from closeout.batches.models import BatchJob
from closeout.closing.services import CloseResult
from closeout.documents.models import Document


def _money(value: Any) -> str:
    return number_format(value, decimal_pos=2, force_grouping=True)


def closed(result: CloseResult) -> str:
    params = {
        "document": result.document.number,
        "lines": len(result.lines_closed),
        "value": _money(result.released_value),
        "currency": result.document.currency,
    }
    if result.header_closed:
        return (
            gettext(
                "%(document)s is closed: %(lines)s line(s) closed, value %(value)s "
                "%(currency)s released."
            )
            % params
        )
    return (
        gettext(
            "%(lines)s line(s) of %(document)s closed, value %(value)s %(currency)s released; "
            "the document stays open."
        )
        % params
    )


def requested(req: CloseRequest) -> str:
    return gettext(
        "Request #%(id)s for %(document)s submitted; it waits for approval (%(step)s)."
    ) % {
        "id": req.pk,
        "document": req.document.number,
        "step": req.step["name"] if req.step else "—",
    }


def reopened(document: Document) -> str:
    return gettext("%(document)s is reopened.") % {"document": document.number}


def approved(req: CloseRequest) -> str:
    params = {"id": req.pk, "document": req.document.number}
    if req.state == RequestState.EXECUTED:
        return gettext("Request #%(id)s approved and executed: %(document)s is done.") % params
    return gettext("Request #%(id)s approved; it goes on to the next step.") % params


def rejected(req: CloseRequest) -> str:
    return gettext("Request #%(id)s rejected; the requester is told.") % {"id": req.pk}


def withdrawn(req: CloseRequest) -> str:
    return gettext("Request #%(id)s withdrawn.") % {"id": req.pk}


def decided_many(request: HttpRequest, results: Sequence[Any], decision: str) -> None:
    done = sum(1 for r in results if r.ok)
    failed = len(results) - done
    text = (
        ngettext("%(n)s request approved.", "%(n)s requests approved.", done)
        if decision == "approve"
        else ngettext("%(n)s request rejected.", "%(n)s requests rejected.", done)
    ) % {"n": done}
    if failed:
        text += " " + ngettext(
            "%(n)s could not be decided (see below).",
            "%(n)s could not be decided (see below).",
            failed,
        ) % {"n": failed}
    (messages.warning if failed else messages.success)(request, text)


def batch_started(job: BatchJob) -> str:
    job.refresh_from_db()
    return gettext("Batch #%(id)s started: %(total)s document(s) queued, %(skipped)s skipped.") % {
        "id": job.pk,
        "total": job.total - job.skipped,
        "skipped": job.skipped,
    }


def remark_needed(count: int) -> str:
    return ngettext(
        "%(n)s document fails an exception rule: write a remark explaining the exception.",
        "%(n)s documents fail an exception rule: write a remark explaining the exception.",
        count,
    ) % {"n": count}
