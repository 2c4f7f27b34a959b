"""Batch close of one close dimension (关闭维度: e.g. close 500 purchase orders for receiving):
a close batch whose selection names a dimension. Each document's open lines close in that
dimension through `closing.dimension_services.line_dimension_close`, one savepoint each."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.batches.messages import item_message_set
from closeout.batches.models import BatchItem, BatchJob, ItemState
from closeout.closing.dimension_services import line_dimension_close
from closeout.closing.dimensions import closed_dimensions, dimension_get
from closeout.core.errors import Bilingual, DomainError, bilingual_label
from closeout.documents.models import CloseState, Document, Line


def job_dimension(job: BatchJob) -> str:
    """The dimension a close batch closes; empty for a whole-document close."""
    return str((job.selection or {}).get("dimension") or "")


def _words(msgid: str, **params: object) -> Bilingual:
    error = DomainError(msgid, params=params)
    return Bilingual(error.message, str(error.details["message_zh"]))


def _named(document: Document) -> Bilingual:
    return document.in_words


def predict_dimension(job: BatchJob, chunk: list[BatchItem]) -> list[tuple[str, object, Decimal]]:
    """What closing the job's dimension would do to each document (changes nothing)."""

    dimension = dimension_get(job.doc_type, job_dimension(job))
    code = dimension.code
    ids = [item.document_id for item in chunk if item.document_id]
    lines = list(Line.objects.filter(document_id__in=ids, close_state=CloseState.OPEN))
    closed = closed_dimensions([line.pk for line in lines])
    open_in: dict[int, int] = {}
    for line in lines:
        if code not in closed.get(line.pk, set()):
            open_in[line.document_id] = open_in.get(line.document_id, 0) + 1
    result: list[tuple[str, object, Decimal]] = []
    for item in chunk:
        document = item.document
        assert document is not None  # noqa: S101
        if document.close_state != CloseState.OPEN:
            state = bilingual_label(CloseState(document.close_state).label)
            words = _words(
                gettext_noop("%(document)s is %(state)s"), document=_named(document), state=state
            )
            result.append(("skipped", words, Decimal(0)))
        elif not user_has_perm(
            job.created_by, Perm.CLOSE_DIRECT, org_unit=document.org_unit, doc_type=job.doc_type
        ):
            words = _words(
                gettext_noop("%(user)s lacks '%(perm)s' for %(document)s"),
                user=job.created_by.get_username(),
                perm=Perm.CLOSE_DIRECT,
                document=_named(document),
            )
            result.append(("refused", words, Decimal(0)))
        elif not open_in.get(document.pk):
            words = _words(
                gettext_noop("%(document)s has no line open for %(dimension)s"),
                document=_named(document),
                dimension=Bilingual(code, _zh(dimension.label)),
            )
            result.append(("skipped", words, Decimal(0)))
        else:
            result.append(("would_close_dim", code, Decimal(0)))
    return result


def process_dimension(job: BatchJob, items: list[BatchItem]) -> None:

    dimension = job_dimension(job)
    label = Bilingual(dimension, _zh(dimension_get(job.doc_type, dimension).closed_label))
    for item in items:
        assert item.document is not None  # noqa: S101
        item.processed_at = timezone.now()
        try:
            with transaction.atomic():  # a savepoint: each document all-or-nothing
                result = line_dimension_close(
                    actor=job.created_by,
                    document=item.document,
                    dimension=dimension,
                    reason_code=job.reason_code,
                    remark=job.remark,
                    request_id=f"batch:{job.pk}",  # the batch's undo finds its closes
                )
            words = _words(
                gettext_noop("%(dimension)s: lines %(lines)s"),
                dimension=label,
                lines=", ".join(map(str, result.lines)),
            )
            item.state, item.outcome = ItemState.DONE, "close_dimension"
            item_message_set(item, words)
        except DomainError as error:
            item.state, item.outcome = ItemState.FAILED, "refused"
            item_message_set(item, error)


def _zh(text: object) -> str:
    with translation.override("zh-hans"):
        return str(text)
