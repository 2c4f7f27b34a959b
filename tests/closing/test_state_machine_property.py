"""Property-based proof of the close state machine (issue 11, item 4).

A hypothesis `RuleBasedStateMachine` drives purchase orders through every action — direct,
line and batch close, close and reopen requests with their decisions, withdrawals and
resubmissions, direct reopen, hold and release of documents and lines, close and reopen of one
close dimension (收货/开票/付款关闭) of lines, the sweep (dimensions by rule too), archive and
business events (receipts, returns, invoices, payments, repeats of the same external id) — by
people with and without each right. After every step it checks the invariants of DESIGN.md:

- a header is closed (or waits for a reopen) exactly when every line is closed or archived, and
  archived exactly when every line is; no line is closed while its header is held unless it was
  closed before the hold;
- a document (or line) waits in a pending state exactly while one pending request of that kind
  covers it;
- every change of a header's state has exactly one audit event whose from/to match the state
  replayed from the log;
- a closed line is closed in every dimension and a line closed in every dimension is closed; no
  receipt or return applies on a line closed for receiving (a return reopens it, audited);
- no business event is lost, each line's measures are the sum of its applied events, each line
  releases exactly its open quantity while closed and nothing while open, open commitments
  equal their recomputation, and the audit chain verifies;
- batch undo (批量撤销): after an undo, every document the batch closed (whole, or some lines
  only) and nobody touched since is back in its state before the batch, line by line with
  what each line released (so the commitments are restored exactly), and the undo changes
  no document that was touched since.
"""

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from closeout.approvals.decide import (
    close_request_approve,
    close_request_reject,
    close_request_withdraw,
)
from closeout.approvals.models import ApprovalRoute, CloseRequest
from closeout.approvals.submit import (
    close_request_resubmit,
    close_request_submit,
    reopen_request_submit,
)
from closeout.audit.models import AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.models import BatchAction, BatchJob
from closeout.batches.services import batch_create, batch_preview, batch_start, batch_work
from closeout.batches.undo import batch_undo_create
from closeout.closing.dimension_services import line_dimension_close, line_dimension_reopen
from closeout.closing.models import LineDimensionClose
from closeout.closing.services import (
    document_close,
    document_hold,
    document_release,
    document_reopen,
)
from closeout.closing.sweep import sweep_run
from closeout.core.errors import DomainError
from closeout.documents.models import (
    BusinessEvent,
    CloseState,
    Document,
    EventKind,
    Line,
)
from closeout.documents.services import event_post
from closeout.reports.archive import archive_run
from tests.approvals.conftest import make_route
from tests.closing.invariants import (
    check_commitments,
    check_dimensions,
    check_events_and_measures,
    check_headers_and_lines,
    check_requests_and_states,
    replay_audit,
)
from tests.factories import PO, Org, an_item, lenient, make_document, user_with_role

S = CloseState
LINE_SETS = st.sampled_from([None, [1], [2], [1, 2]])
DIMENSIONS = ["receiving", "invoicing", "payment"]
EVENT_KINDS = [EventKind.RECEIPT, EventKind.RETURN, EventKind.INVOICE, EventKind.PAYMENT]


class CloseStateMachine(RuleBasedStateMachine):
    """One example: three purchase orders of two lines, five people, two approval routes."""

    people: dict[str, User]

    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.documents: list[Document] = []
        self.posted: dict[str, tuple[int, int, str, Decimal, Decimal]] = {}
        self.replayed: dict[int, str] = {}
        self.seq = 0
        self.closed_at_hold: dict[int, set[int]] = {}
        self.refusals: Counter[str] = Counter()
        # Batches run: (job id, owner, per document (before the batch, just after it)).
        self.batches: list[tuple[int, str, dict[int, tuple[Any, Any]]]] = []

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    @initialize(received=st.lists(st.integers(0, 10), min_size=6, max_size=6))
    def build(self, received: list[int]) -> None:
        lenient(PO, auto_close_dimensions=True)
        make_route("例外结案 exceptions", condition="exception")
        make_route("反结案 reopen", action="reopen")
        item = an_item("PROP-ITEM")
        for d in range(3):
            document = make_document(PO, self.org.team_a1, ((10, 5), (8, 3)), item=item)
            self.documents.append(document)
            self.replayed[document.pk] = S.OPEN
            for line_no in (1, 2):
                qty = min(received[d * 2 + line_no - 1], 10 if line_no == 1 else 8)
                price = 5 if line_no == 1 else 3
                if qty:
                    self._post(document, EventKind.RECEIPT, line_no, qty, 0)
                    self._post(document, EventKind.INVOICE, line_no, qty, qty * price)
                    self._post(document, EventKind.PAYMENT, line_no, 0, qty * price)
        self.seq = self._head()

    # --- helpers ------------------------------------------------------------------------------

    def _head(self) -> int:
        return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def _doc(self, index: int) -> Document:
        return Document.objects.get(pk=self.documents[index].pk)

    def _try(self, name: str, action: Any) -> None:
        try:
            with transaction.atomic():
                action()
        except DomainError as refusal:
            self.refusals[f"{name}:{refusal.code}"] += 1

    def _post(
        self, document: Document, kind: str, line_no: int, qty: int, amount: int, xid: str = ""
    ) -> None:
        external_id = xid or f"EV-{len(self.posted) + 1}"
        try:
            with transaction.atomic():
                result = event_post(
                    actor=None,
                    document=document,
                    kind=kind,
                    external_id=external_id,
                    line_no=line_no,
                    quantity=str(qty),
                    amount=str(amount),
                    occurred_at=self.now - timedelta(days=60),
                )
        except DomainError as refusal:
            self.refusals[f"event:{refusal.code}"] += 1
            return
        if result.outcome != "duplicate":
            assert external_id not in self.posted
            self.posted[external_id] = (document.pk, line_no, kind, Decimal(qty), Decimal(amount))

    def _requests(self) -> list[CloseRequest]:
        return list(
            CloseRequest.objects.filter(document_id__in=[d.pk for d in self.documents]).order_by(
                "pk"
            )
        )

    def _person(self, name: str) -> User:
        return self.people[name]

    def _facts(self, pk: int) -> tuple[Any, ...]:
        """Everything a change to a document moves: its header, each line's state, measures
        and releases, its business events and its closed dimensions."""
        document = Document.objects.get(pk=pk)
        lines = tuple(
            Line.objects.filter(document_id=pk)
            .order_by("line_no")
            .values_list(
                "line_no",
                "close_state",
                "fulfilled_qty",
                "invoiced_qty",
                "settled_amount",
                "released_qty",
                "released_value",
                "closed_in",
            )
        )
        dims = tuple(
            LineDimensionClose.objects.filter(document_id=pk)
            .order_by("line_id", "dimension")
            .values_list("line_id", "dimension", "released_qty")
        )
        events = BusinessEvent.objects.filter(document_id=pk).count()
        header = (document.version, document.close_state, document.close_seq)
        return header, lines, dims, events

    @staticmethod
    def _restorable(facts: tuple[Any, ...]) -> tuple[Any, ...]:
        """What an undo restores: the header's state, each line's state and what it released,
        the closed dimensions and the events (versions and close sequences move on)."""
        header, lines, dims, events = facts
        return header[1], tuple(line[:7] for line in lines), dims, events

    # --- actions ------------------------------------------------------------------------------

    @rule(
        doc=st.integers(0, 2),
        line_no=st.sampled_from([1, 2]),
        kind=st.sampled_from(EVENT_KINDS),
        qty=st.integers(0, 6),
        repeat=st.booleans(),
    )
    def post_event(self, doc: int, line_no: int, kind: str, qty: int, repeat: bool) -> None:
        document = self._doc(doc)
        if repeat and self.posted:
            # The same external id again, with the same facts: a duplicate changes nothing
            # (with other facts it would be an event_conflict).
            xid, (pk, ln, k, q, a) = sorted(self.posted.items())[-1]
            self._post(Document.objects.get(pk=pk), k, ln, int(q), int(a), xid)
            return
        amount = qty * (5 if line_no == 1 else 3)
        self._post(document, kind, line_no, qty, 0 if kind == EventKind.RETURN else amount)

    @rule(
        who=st.sampled_from(["op", "sup", "viewer", "outsider"]),
        doc=st.integers(0, 2),
        lines=LINE_SETS,
        remark=st.sampled_from(["", "short by agreement"]),
    )
    def close(self, who: str, doc: int, lines: list[int] | None, remark: str) -> None:
        self._try(
            "close",
            lambda: document_close(
                actor=self._person(who),
                document=self._doc(doc),
                reason_code="completed",
                remark=remark,
                line_nos=lines,
            ),
        )

    @rule(who=st.sampled_from(["op", "viewer"]), doc=st.integers(0, 2), lines=LINE_SETS)
    def request_close(self, who: str, doc: int, lines: list[int] | None) -> None:
        self._try(
            "request_close",
            lambda: close_request_submit(
                actor=self._person(who),
                document=self._doc(doc),
                reason_code="supplier_cannot_deliver",
                remark="supplier stopped",
                line_nos=lines,
            ),
        )

    @rule(who=st.sampled_from(["op", "viewer"]), doc=st.integers(0, 2))
    def request_reopen(self, who: str, doc: int) -> None:
        self._try(
            "request_reopen",
            lambda: reopen_request_submit(
                actor=self._person(who),
                document=self._doc(doc),
                reason_code="wrong_close",
                remark="closed by mistake",
            ),
        )

    @rule(
        who=st.sampled_from(["sup", "fin", "op", "outsider"]),
        pick=st.integers(0, 20),
        approve=st.booleans(),
    )
    def decide(self, who: str, pick: int, approve: bool) -> None:
        requests = self._requests()
        if not requests:
            return
        request = requests[pick % len(requests)]
        actor = self._person(who)
        if approve:
            self._try("approve", lambda: close_request_approve(actor=actor, request=request))
        else:
            self._try(
                "reject",
                lambda: close_request_reject(actor=actor, request=request, comment="no"),
            )

    @rule(who=st.sampled_from(["op", "sup"]), pick=st.integers(0, 20), resubmit=st.booleans())
    def withdraw_or_resubmit(self, who: str, pick: int, resubmit: bool) -> None:
        requests = self._requests()
        if not requests:
            return
        request = requests[pick % len(requests)]
        actor = self._person(who)
        if resubmit:
            self._try("resubmit", lambda: close_request_resubmit(actor=actor, request=request))
        else:
            self._try("withdraw", lambda: close_request_withdraw(actor=actor, request=request))

    @rule(who=st.sampled_from(["sup", "op"]), doc=st.integers(0, 2))
    def reopen(self, who: str, doc: int) -> None:
        self._try(
            "reopen",
            lambda: document_reopen(
                actor=self._person(who), document=self._doc(doc), reason_code="wrong_close"
            ),
        )

    @rule(
        who=st.sampled_from(["op", "viewer"]),
        doc=st.integers(0, 2),
        lines=st.sampled_from([None, [1], [2]]),
        release=st.booleans(),
    )
    def hold_or_release(self, who: str, doc: int, lines: list[int] | None, release: bool) -> None:
        actor, document = self._person(who), self._doc(doc)
        if release:
            self._try(
                "release",
                lambda: document_release(actor=actor, document=document, line_nos=lines),
            )
            return
        closed = set(document.lines.filter(close_state=S.CLOSED).values_list("line_no", flat=True))
        self._try(
            "hold",
            lambda: document_hold(actor=actor, document=document, reason="dispute", line_nos=lines),
        )
        if lines is None and self._doc(doc).close_state == S.ON_HOLD:
            self.closed_at_hold[document.pk] = closed

    @rule(
        who=st.sampled_from(["sup", "op", "viewer"]),
        doc=st.integers(0, 2),
        lines=st.sampled_from([None, [1], [2]]),
        dimension=st.sampled_from(DIMENSIONS),
        remark=st.sampled_from(["", "short for good"]),
    )
    def close_dimension(
        self, who: str, doc: int, lines: list[int] | None, dimension: str, remark: str
    ) -> None:
        self._try(
            "close_dimension",
            lambda: line_dimension_close(
                actor=self._person(who),
                document=self._doc(doc),
                dimension=dimension,
                reason_code="short_delivery_accepted",
                remark=remark,
                line_nos=lines,
            ),
        )

    @rule(
        who=st.sampled_from(["sup", "op"]),
        doc=st.integers(0, 2),
        line_no=st.sampled_from([1, 2]),
        dimension=st.sampled_from(DIMENSIONS),
    )
    def reopen_dimension(self, who: str, doc: int, line_no: int, dimension: str) -> None:
        self._try(
            "reopen_dimension",
            lambda: line_dimension_reopen(
                actor=self._person(who),
                document=self._doc(doc),
                dimension=dimension,
                reason_code="late_delivery",
                line_nos=[line_no],
            ),
        )

    @rule()
    def sweep(self) -> None:
        sweep_run(doc_type=PO)

    @rule(
        who=st.sampled_from(["op", "sup", "outsider"]),
        docs=st.sets(st.integers(0, 2), min_size=1),
        then_undo=st.sampled_from([None, False, True]),
    )
    def batch_close(self, who: str, docs: set[int], then_undo: bool | None) -> None:
        """A batch close; with `then_undo` (routed or not) undone at once, nothing between.
        Unrouted, no approval route applies to the batch either (an installation without
        one): documents with exceptions then close directly, with the batch's remark."""
        actor = self._person(who)
        pks = [self.documents[i].pk for i in sorted(docs)]
        before = {pk: self._facts(pk) for pk in pks}
        last = BatchJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

        def run() -> None:
            job = batch_create(
                actor=actor,
                action=BatchAction.CLOSE,
                doc_type=PO,
                numbers=[self.documents[i].number for i in sorted(docs)],
                reason_code="completed",
                remark="batch",
            )
            batch_preview(actor=actor, job=job)
            batch_start(actor=actor, job=job)
            batch_work(job.pk)

        routes = ApprovalRoute.objects.filter(active=True)
        switched = list(routes.values_list("pk", flat=True)) if then_undo is False else []
        ApprovalRoute.objects.filter(pk__in=switched).update(active=False)
        self._try("batch", run)
        ApprovalRoute.objects.filter(pk__in=switched).update(active=True)
        job = BatchJob.objects.filter(pk__gt=last, action=BatchAction.CLOSE).first()
        if job is not None:
            self.batches.append((job.pk, who, {pk: (before[pk], self._facts(pk)) for pk in pks}))
            if then_undo is not None:
                self.undo_batch(len(self.batches) - 1, routed=then_undo)

    @precondition(lambda self: bool(self.batches))
    @rule(pick=st.integers(0, 20), routed=st.booleans())
    def undo_batch(self, pick: int, routed: bool) -> None:
        """Undo a batch run earlier, by its owner; without `routed` no reopen route applies
        (the route is switched off for the undo), so an undone document reopens directly."""
        if not self.batches:
            return
        job_id, owner, documents = self.batches[pick % len(self.batches)]
        actor = self._person(owner)
        now = {pk: self._facts(pk) for pk in documents}
        last = BatchJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        reopen_routes = ApprovalRoute.objects.filter(action="reopen")
        if not routed:
            reopen_routes.update(active=False)

        def run() -> None:
            undo = batch_undo_create(actor=actor, job_id=job_id)
            batch_preview(actor=actor, job=undo)
            batch_start(actor=actor, job=undo)
            batch_work(undo.pk)

        self._try("undo", run)
        reopen_routes.update(active=True)
        undo = BatchJob.objects.filter(pk__gt=last, undoes_id=job_id).first()
        if undo is None:
            return
        outcomes = dict(undo.items.values_list("document_id", "outcome"))
        for pk, (before, after) in documents.items():
            closed_by_batch = self._restorable(before) != self._restorable(after)
            untouched = now[pk] == after
            if closed_by_batch and untouched and owner == "sup" and not routed:
                assert outcomes.get(pk) == "reopened", (pk, outcomes.get(pk))
            if outcomes.get(pk) == "reopened":
                assert untouched, pk
                assert self._restorable(self._facts(pk)) == self._restorable(before), pk
            elif outcomes.get(pk) != "requested":
                assert self._facts(pk) == now[pk], pk

    @rule()
    def archive(self) -> None:
        archive_run(actor=self.people["admin"], today=self.today + timedelta(days=400))

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def headers_and_lines_agree(self) -> None:
        check_headers_and_lines(list(self.replayed), self.closed_at_hold)

    @invariant()
    def dimensions_and_lines_agree(self) -> None:
        check_dimensions(list(self.replayed))

    @invariant()
    def requests_and_states_agree(self) -> None:
        check_requests_and_states(list(self.replayed))

    @invariant()
    def every_change_has_one_matching_audit_event(self) -> None:
        self.seq = replay_audit(self.replayed, after_seq=self.seq)

    @invariant()
    def no_event_is_lost_and_measures_add_up(self) -> None:
        check_events_and_measures(list(self.replayed), posted=len(self.posted))

    @invariant()
    def commitments_are_exactly_released(self) -> None:
        check_commitments(list(self.replayed), an_item("PROP-ITEM"))

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        assert audit_chain_verify().intact


# The machine is bounded (12 examples × 30 steps, every invariant after every step), but its
# time is not: 16 s alone, 120 s and more with PostgreSQL on two cores shared with other test
# runs. Past the suite's 300 s, pytest-timeout's SIGALRM raised inside psycopg's wait for a
# statement (a SAVEPOINT), so the savepoint's rollback failed and the test's transaction was
# left marked for rollback; hypothesis then replayed the example on that connection and reported
# the TransactionManagementError ("An error occurred in the current transaction") of its first
# query instead of the timeout (reproduced: --hypothesis-seed=100 with 60 examples on
# PostgreSQL). Its own limit, with room for a loaded machine, keeps the alarm for a real hang.
@pytest.mark.timeout(1200)
def test_no_sequence_of_actions_corrupts_a_close_state(org: Org, settings: Any) -> None:
    from django.utils import timezone

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    CloseStateMachine.org = org  # type: ignore[attr-defined]
    CloseStateMachine.now = timezone.now()  # type: ignore[attr-defined]
    CloseStateMachine.today = timezone.localdate()  # type: ignore[attr-defined]
    CloseStateMachine.people = {
        "op": user_with_role("op", "operator", org.company),
        "sup": user_with_role("sup", "supervisor", org.company),
        "fin": user_with_role("fin", "finance", org.company),
        "viewer": user_with_role("viewer", "auditor", org.company),
        "outsider": user_with_role("outsider", "supervisor", org.dept_b),
        "admin": user_with_role("adm", "admin", org.company),
    }
    state_machine = CloseStateMachine.TestCase
    state_machine.settings = hypothesis_settings(
        hypothesis_settings.default,
        max_examples=12,
        stateful_step_count=30,
        deadline=None,
    )
    state_machine().runTest()
