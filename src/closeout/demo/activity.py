"""What happens in the demo after the automatic close: late business, an undone batch."""

from datetime import timedelta
from decimal import Decimal

from closeout.batches.models import BatchAction
from closeout.batches.services import batch_create, batch_preview, batch_start, batch_work
from closeout.batches.undo import batch_undo_create
from closeout.closing.selectors import documents_ready_to_close
from closeout.core.doctypes import doc_type_codes
from closeout.demo.base import AW_SOURCE, BuilderBase, DemoEvent, Scenario
from closeout.documents.models import (
    CloseKind,
    CloseState,
    DocType,
    Document,
    EventKind,
)


class ActivityBuilder(BuilderBase):
    def after_sweep(self) -> None:
        """Business that arrives after the automatic close: quarantined, never lost."""
        for document, order in self.late_returns:
            document.refresh_from_db()
            if document.close_state != CloseState.CLOSED:
                continue
            ship = order.events[0].day
            self.post(
                document,
                DemoEvent(
                    EventKind.RETURN,
                    "1-RET-LATE",
                    min(self.today, ship + timedelta(days=20)),
                    1,
                    Decimal(1),
                    note="结案后客户退货 customer return after the close",
                ),
                f"AW-{order.number}",
                AW_SOURCE,
            )
            self.tag(Scenario.QUARANTINED, document)
        accepted = Document.objects.filter(
            doc_type=DocType.PROJECT_STAGE, number="PS-ASM-01", close_state=CloseState.CLOSED
        ).first()
        if accepted is not None:
            self.post(
                accepted,
                DemoEvent(
                    EventKind.COST_POSTING,
                    "1-COST-LATE",
                    self.today - timedelta(days=1),
                    1,
                    amount=Decimal("3800.00"),
                    note="结案后到达的差旅费 travel cost after close",
                ),
                accepted.number,
                "pm",
            )
            self.tag(Scenario.QUARANTINED, accepted)

    def found_after_sweep(self) -> None:

        for document in Document.objects.filter(
            close_state=CloseState.CLOSED, close_kind=CloseKind.AUTO
        ).order_by("doc_type", "number"):
            self.tag(Scenario.AUTO_CLOSED, document)
        for doc_type in doc_type_codes():
            for document in documents_ready_to_close(doc_type).order_by("number"):
                self.tag(Scenario.READY_WAITING, document)

    def undone_batch(self) -> None:
        """A close batch of three purchase orders that were ready, then its undo (批量撤销):
        they are open again, and the batch page shows "undone by #N". Before the approval
        routes exist, so the undo reopens directly."""

        actor = self.user("supervisor")
        numbers = list(
            documents_ready_to_close(DocType.PURCHASE_ORDER)
            .order_by("number")
            .values_list("number", flat=True)[:3]
        )
        if not numbers:
            return
        job = batch_create(
            actor=actor,
            action=BatchAction.CLOSE,
            doc_type=DocType.PURCHASE_ORDER,
            numbers=numbers,
            reason_code="completed",
            remark="演示：误操作的批量结案 demo: a mistaken mass close",
        )
        for step in (job, None):
            step = step or batch_undo_create(actor=actor, job_id=job.pk)
            batch_preview(actor=actor, job=step)
            batch_start(actor=actor, job=step, workers=1)
            batch_work(step.pk)
