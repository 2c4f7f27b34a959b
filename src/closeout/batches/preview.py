"""The preview of a batch job: each item's predicted outcome (would close, refused, needs a
remark…) in words, chunk by chunk."""

from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.approvals.models import RequestAction, RequestState
from closeout.approvals.selectors import active_routes, route_choose
from closeout.batches.create import REFUSED_OUTCOMES, items_save, job_locked_for
from closeout.batches.dimension_batch import job_dimension, predict_dimension
from closeout.batches.models import BatchAction, BatchItem, BatchJob, BatchState
from closeout.closing.models import ClosePolicy, ReasonAction, Severity
from closeout.closing.policies import policy_for
from closeout.closing.reasons import reason_get
from closeout.closing.selectors import (
    DocumentVerdict,
    released_value_for,
    verdicts_for,
)
from closeout.closing.services import (
    close_guard,
    close_period_check,
    named,
)
from closeout.core.errors import (
    Bilingual,
    DomainError,
    InvalidInput,
    bilingual_label,
    code_words,
)
from closeout.documents.models import CloseState, Document


class DecideChunk:
    """What deciding many documents asks again and again, asked once per chunk: the user's
    permission per organisation unit and type, the policy per unit, the approval routes."""

    def __init__(self, user: AbstractBaseUser, perm: str) -> None:
        self.user, self.perm = user, perm
        self.allowed: dict[tuple[int, str], bool] = {}
        self.policies: dict[tuple[int, str], ClosePolicy] = {}
        self.routes = active_routes(RequestAction.CLOSE)
        self.period_refusals: dict[tuple[date, int], str] = {}
        self.reason_refusals: dict[tuple[str, int], str] = {}

    def reason_refusal(self, code: str, company_id: int) -> str:
        """Why the close reason `code` is refused for a document of the company (a code of
        another company; "" if it is valid there)."""
        key = (code, company_id)
        if key not in self.reason_refusals:
            try:
                reason_get(code, ReasonAction.CLOSE, company_id=company_id)
                self.reason_refusals[key] = ""
            except DomainError as refusal:
                self.reason_refusals[key] = refusal.message
        return self.reason_refusals[key]

    def period_refusal(self, day: date, company_id: int) -> str:
        """Why a close dated `day` is refused by a closed accounting period of the company
        ("" if it is not)."""
        key = (day, company_id)
        if key not in self.period_refusals:
            try:
                close_period_check(day, field="close_date", company_id=company_id)
                self.period_refusals[key] = ""
            except DomainError as refusal:
                self.period_refusals[key] = refusal.message
        return self.period_refusals[key]

    def allows(self, document: Document) -> bool:
        key = (document.org_unit_id, document.doc_type)
        if key not in self.allowed:
            self.allowed[key] = user_has_perm(
                self.user, self.perm, org_unit=document.org_unit, doc_type=document.doc_type
            )
        return self.allowed[key]

    def policy(self, document: Document) -> ClosePolicy:
        key = (document.org_unit_id, document.doc_type)
        if key not in self.policies:
            self.policies[key] = policy_for(document.doc_type, document.org_unit)
        return self.policies[key]


def close_outcome(
    job: BatchJob,
    document: Document,
    verdict: DocumentVerdict | None,
    open_value: Decimal,
    chunk: DecideChunk,
    *,
    remark: str | None = None,
    action: str | None = None,
    close_date: date | None = None,
) -> tuple[str, str]:
    """(predicted outcome, message) for closing one document: would_close, needs_approval or
    refused — the same guards as a manual close. An imported row passes its own remark and
    action instead of the job's."""
    outcome, words = _close_outcome_words(
        job,
        document,
        verdict,
        open_value,
        chunk,
        remark=remark,
        action=action,
        close_date=close_date,
    )
    return ("refused" if outcome == "needs_remark" else outcome), words.en


def _failing_rules(verdict: DocumentVerdict, severity: str) -> dict[str, object]:
    """The rules of one severity a document fails, by code, named in both languages."""
    return {
        rule.code: Bilingual(f"{rule.code}: {rule.label_en}", rule.label_zh)
        for rule, failing in verdict.failing
        if failing == severity
    }


def _words(msgid: str, **params: object) -> Bilingual:
    """A preview message in English and Chinese (a batch's owner reads it in either)."""
    error = DomainError(msgid, params=params)
    return Bilingual(error.message, str(error.details["message_zh"]))


def _close_outcome_words(
    job: BatchJob,
    document: Document,
    verdict: DocumentVerdict | None,
    open_value: Decimal,
    chunk: DecideChunk,
    *,
    remark: str | None = None,
    action: str | None = None,
    close_date: date | None = None,
) -> tuple[str, Bilingual]:
    """close_outcome with its message in both languages, and needs_remark told apart from
    the other refusals."""
    remark = job.remark if remark is None else remark
    action = job.action if action is None else action
    if document.close_state != CloseState.OPEN:
        return "skipped", _words(
            gettext_noop("%(document)s is %(state)s"),
            document=named(document),
            state=bilingual_label(CloseState(document.close_state).label),
        )
    if not chunk.allows(document):
        return "refused", _words(
            gettext_noop("%(user)s lacks '%(perm)s' for %(document)s"),
            user=job.created_by.get_username(),
            perm=chunk.perm,
            document=named(document),
        )
    in_closed_period = chunk.period_refusal(
        close_date or job.close_date or timezone.localdate(), document.company_id
    )
    if in_closed_period:
        return "refused", _words(
            gettext_noop("%(document)s: %(why)s"),
            document=named(document),
            why=in_closed_period,
        )
    wrong_reason = job.reason_code and chunk.reason_refusal(job.reason_code, document.company_id)
    if wrong_reason:
        return "refused", _words(
            gettext_noop("%(document)s: %(why)s"), document=named(document), why=wrong_reason
        )
    assert verdict is not None  # noqa: S101 (every open document has a verdict)
    blocking = _failing_rules(verdict, Severity.BLOCKING)
    exceptions = _failing_rules(verdict, Severity.EXCEPTION)
    try:
        if blocking or exceptions:  # else the guard passes: no words to build for it
            close_guard(named(document), blocking=blocking, exceptions=exceptions, remark=remark)
    except DomainError as refusal:
        # The close would need a remark (closing.services.remark_required): not a refusal of
        # the document, a field the batch left empty.
        outcome = "needs_remark" if refusal.details.get("field") == "remark" else "refused"
        return outcome, Bilingual(
            refusal.message, str(refusal.details.get("message_zh", refusal.message))
        )
    exception = bool(verdict.codes(Severity.EXCEPTION))
    route = route_choose(
        document=document,
        action=RequestAction.CLOSE,
        exception=exception,
        open_value=open_value,
        routes=chunk.routes,
    )
    needs_approval = chunk.policy(document).direct_close_needs_approval
    if route is not None or needs_approval or action == BatchAction.REQUEST:
        if route is not None:
            route_words = _words(gettext_noop("approval route: %(name)s"), name=route.name)
            return "needs_approval", route_words
        return "needs_approval", _words(gettext_noop("approval route: policy"))
    return "would_close", Bilingual("", "")


def _chunks(qs: QuerySet[BatchItem], size: int) -> Iterator[list[BatchItem]]:
    last = 0
    while True:
        chunk = list(qs.filter(pk__gt=last).order_by("pk")[:size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def batch_preview(*, actor: AbstractBaseUser, job: BatchJob, chunk_size: int = 2000) -> BatchJob:
    """Predict each item's outcome; changes no document."""
    with transaction.atomic():
        job = job_locked_for(actor, job.pk)
        if job.state not in (BatchState.DRAFT, BatchState.PREVIEWED):
            raise InvalidInput(
                gettext_noop("batch #%(job)s is %(state)s; only a draft can be previewed"),
                params={"job": job.pk, "state": code_words(job.state, BatchState(job.state).label)},
            )
        if job.action == BatchAction.IMPORT:
            raise InvalidInput(
                gettext_noop(
                    "batch #%(job)s runs an imported file, whose rows were checked when it was "
                    "validated; it has no separate preview"
                ),
                params={"job": job.pk},
            )
    counts: dict[str, int] = {}
    released = Decimal(0)
    items = BatchItem.objects.filter(job=job).select_related(
        "document", "document__org_unit", "request"
    )
    for chunk in _chunks(items, chunk_size):
        predictions = _predict(job, chunk)
        for item, (outcome, message, value) in zip(chunk, predictions, strict=True):
            item.predicted, item.predicted_message = outcome, _in_english(message)[:2000]
            if isinstance(message, Bilingual) and message.zh != message.en:
                # The page shows the owner's language; the API and the CSV keep English.
                item.params = {**item.params, "predicted_message_zh": message.zh[:2000]}
            counts[outcome] = counts.get(outcome, 0) + 1
            released += value
        items_save(chunk, ["predicted", "predicted_message", "params"])
    BatchJob.objects.filter(pk=job.pk).update(
        predicted=counts, predicted_released_value=released, state=BatchState.PREVIEWED
    )
    job.refresh_from_db()
    return job


def _in_english(message: object) -> str:
    return message.en if isinstance(message, Bilingual) else str(message)


def _predict(job: BatchJob, chunk: list[BatchItem]) -> Sequence[tuple[str, object, Decimal]]:
    if job_dimension(job):
        return predict_dimension(job, chunk)
    if job.action == BatchAction.UNDO:
        from closeout.batches.undo import restored_value
        from closeout.batches.undo_run import predict_undo

        return [
            (
                outcome,
                message,
                restored_value(item) if outcome.startswith(("would", "needs")) else Decimal(0),
            )
            for item, (outcome, message) in zip(chunk, predict_undo(job, chunk), strict=True)
        ]
    if job.action in (BatchAction.CLOSE, BatchAction.REQUEST):
        ids = [i.document_id for i in chunk if i.document_id]
        verdicts = verdicts_for(ids, doc_type=job.doc_type)
        values = released_value_for(ids, doc_type=job.doc_type)
        perm = Perm.CLOSE_REQUEST if job.action == BatchAction.REQUEST else Perm.CLOSE_DIRECT
        permissions = DecideChunk(job.created_by, perm)
        result: list[tuple[str, object, Decimal]] = []
        for item in chunk:
            assert item.document is not None  # noqa: S101
            value = values.get(item.document.pk, Decimal(0))
            outcome, words = _close_outcome_words(
                job, item.document, verdicts.get(item.document.pk), value, permissions
            )
            refused = outcome in REFUSED_OUTCOMES
            result.append((outcome, words, Decimal(0) if refused else value))
        return result
    if job.action == BatchAction.REOPEN:
        permissions = DecideChunk(job.created_by, Perm.REOPEN_APPROVE)
        result = []
        for item in chunk:
            assert item.document is not None  # noqa: S101
            doc = item.document
            if doc.close_state != CloseState.CLOSED:
                result.append(("skipped", f"{doc.label} is {doc.close_state}", Decimal(0)))
            elif not permissions.allows(doc):
                result.append(("refused", f"lacks 'reopen.approve' for {doc.label}", Decimal(0)))
            else:
                result.append(("would_reopen", "", Decimal(0)))
        return result
    result = []
    for item in chunk:
        assert item.request is not None  # noqa: S101
        request = item.request
        if request.state != RequestState.PENDING:
            result.append(("skipped", f"request #{request.pk} is {request.state}", Decimal(0)))
        elif request.requester_id == job.created_by_id:
            result.append(("refused", "separation of duties: your own request", Decimal(0)))
        else:
            result.append((f"would_{job.action}", "", Decimal(0)))
    return result


__all__ = ["batch_preview"]
