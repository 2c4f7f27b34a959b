"""Post-close verification (结案后校验, S16): after a batch job, prove that the documents are in
the state its results say, that open commitments reflect exactly what the closed lines
released, and that the audit trail is intact and records every close.

Commitments need no snapshot: a closed line keeps the quantity it released (`released_qty`)
and its measures cannot move while it is closed (later events are quarantined). So, per item,
the commitments recomputed as if the batch's lines were still open, minus the commitments now
(`open_commitments_by_item`), must equal the sum of the released quantities recorded on those
lines. A line reopened or changed behind the application's back breaks that equality.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Abs, Cast
from django.utils import timezone
from django.utils.translation import gettext_noop, pgettext_lazy
from django.utils.translation import gettext_noop as N_

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require, user_has_perm
from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.audit.services import audit_chain_verify, audit_record
from closeout.batches.messages import message_english, message_record, outcome_phrase
from closeout.batches.models import BatchAction, BatchItem, BatchJob, ItemState
from closeout.closing.rules import LINE_SCOPE, dec, more_than, num, open_qty_expr
from closeout.closing.selectors import open_commitments_by_item
from closeout.core.doctypes import doc_type_label_lazy
from closeout.core.errors import Bilingual, Message, NotFound, code_words, document_words
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.types import all_specs
from closeout.reports.models import PostCloseVerification

CLOSED_STATES = (CloseState.CLOSED, CloseState.ARCHIVED)
CLOSE_ACTIONS = (AuditAction.DOCUMENT_CLOSED, AuditAction.LINES_CLOSED)
# Problems kept on the stored result; the count covers them all.
MAX_STORED_PROBLEMS = 500
QTY_EPS = Decimal("0.0001")
# The commitments a closed line releases, by name (English messages keep the code).
COMMITMENT_LABELS = {
    "on_order": pgettext_lazy("commitment", "on order"),
    "reserved": pgettext_lazy("commitment", "reserved"),
}


@dataclass(frozen=True)
class Problem:
    """One thing the verification found. `message` is kept in English (the API, the CLI) and
    as a message record (`record`), so the verification page reads it in its own language."""

    check: str  # state, commitments, audit
    document: object  # a number, or a phrase (Bilingual, Message) read in each language
    message: Message
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "document": message_english(self.document),
            "document_record": message_record(self.document),
            "line": self.line,
            "message": self.message.en,
            "record": message_record(self.message),
        }


def _state(code: str) -> Bilingual:
    """A document's close state as a message parameter (the code in English)."""
    return code_words(code, CloseState(code).label)


def _reported(outcome: str, state: str) -> Bilingual:
    return outcome_phrase(outcome or state)


def _doc_events(*actions: AuditAction) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(
        object_type=AuditObject.DOCUMENT,
        object_id=Cast(OuterRef("document_id"), CharField(max_length=64)),
        action__in=[int(a) for a in actions],
    )


def _state_problems(job: BatchJob) -> tuple[int, list[Problem]]:
    """(a) and the close events of (c): one query over the job's items."""
    tag = f"batch:{job.pk}"
    window = Q(at__gte=job.started_at) if job.started_at else Q()
    rows = (
        BatchItem.objects.filter(job_id=job.pk, document__isnull=False)
        .annotate(
            doc_state=F("document__close_state"),
            closed_here=Exists(_doc_events(*CLOSE_ACTIONS).filter(request_id=tag)),
            reopened_here=Exists(_doc_events(AuditAction.DOCUMENT_REOPENED).filter(window)),
            reopened_by_tag=Exists(
                _doc_events(
                    AuditAction.DOCUMENT_REOPENED,
                    AuditAction.LINES_REOPENED,
                    AuditAction.LINE_DIMENSIONS_REOPENED,  # an undo of a dimension close
                ).filter(request_id=tag)
            ),
            open_line=Exists(
                Line.objects.filter(
                    document_id=OuterRef("document_id"), close_state=CloseState.OPEN
                )
            ),
            held_line=Exists(
                Line.objects.filter(
                    document_id=OuterRef("document_id"), close_state=CloseState.ON_HOLD
                )
            ),
        )
        .order_by("pk")
        .values_list(
            "label",
            "state",
            "outcome",
            "doc_state",
            "closed_here",
            "reopened_here",
            "open_line",
            "held_line",
            "reopened_by_tag",
        )
    )
    problems: list[Problem] = []
    checked = 0
    for label, state, outcome, doc_state, closed_here, reopened, open_line, held, tagged in rows:
        checked += 1
        if state == ItemState.PENDING:
            problems.append(
                Problem("state", label, Message(N_("still pending: the batch did not finish it")))
            )
        elif job.action == BatchAction.UNDO:
            problems += _undo_item_problems(label, state, outcome, doc_state, tagged)
        elif job.action == BatchAction.CLOSE:
            problems += _close_item_problems(
                label, state, outcome, doc_state, closed_here, open_line, held
            )
        elif job.action == BatchAction.REOPEN:
            if state == ItemState.DONE and doc_state in CLOSED_STATES:
                problems.append(
                    Problem(
                        "state",
                        label,
                        Message(
                            N_("reported reopened but its state is %(state)s"),
                            state=_state(doc_state),
                        ),
                    )
                )
            if state == ItemState.DONE and not reopened:
                problems.append(
                    Problem("audit", label, Message(N_("reopened without a reopen audit event")))
                )
            if state != ItemState.DONE and reopened:
                problems.append(
                    Problem(
                        "state",
                        label,
                        Message(
                            N_("reported %(outcome)s but it was reopened"),
                            outcome=_reported(outcome, state),
                        ),
                    )
                )
    return checked, problems


def _undo_item_problems(
    label: str, state: str, outcome: str, doc_state: str, reopened: bool
) -> list[Problem]:
    """An undo item: reopened by this job (its tagged reopen event, the document no longer
    closed), or its reopen requested (the document waiting or reopened); no other reopen."""
    problems: list[Problem] = []
    if outcome == "reopened":
        if doc_state in CLOSED_STATES:
            problems.append(
                Problem(
                    "state",
                    label,
                    Message(
                        N_("reported reopened but its state is %(state)s"),
                        state=_state(doc_state),
                    ),
                )
            )
        if not reopened:
            problems.append(
                Problem("audit", label, Message(N_("reopened without its reopen audit event")))
            )
    elif outcome == "requested":
        if doc_state not in (CloseState.REOPEN_PENDING, CloseState.OPEN):
            problems.append(
                Problem(
                    "state",
                    label,
                    Message(
                        N_("reopen requested but its state is %(state)s"), state=_state(doc_state)
                    ),
                )
            )
    elif reopened:
        problems.append(
            Problem(
                "state",
                label,
                Message(
                    N_("reported %(outcome)s but it reopened"), outcome=_reported(outcome, state)
                ),
            )
        )
    return problems


def _close_item_problems(
    label: str,
    state: str,
    outcome: str,
    doc_state: str,
    closed_here: bool,
    open_line: bool,
    held: bool,
) -> list[Problem]:
    problems: list[Problem] = []
    if state == ItemState.DONE and outcome == "closed":
        header_ok = doc_state in CLOSED_STATES or (held and doc_state == CloseState.OPEN)
        if not header_ok:
            problems.append(
                Problem(
                    "state",
                    label,
                    Message(
                        N_("reported closed but its state is %(state)s"), state=_state(doc_state)
                    ),
                )
            )
        if open_line:
            problems.append(
                Problem("state", label, Message(N_("reported closed but a line is open")))
            )
        if not closed_here:
            problems.append(
                Problem(
                    "audit",
                    label,
                    Message(N_("closed without its close audit event from this batch")),
                )
            )
    elif state == ItemState.DONE and outcome == "requested":
        if doc_state not in (CloseState.CLOSE_PENDING, *CLOSED_STATES):
            problems.append(
                Problem(
                    "state",
                    label,
                    Message(
                        N_("close requested but its state is %(state)s"), state=_state(doc_state)
                    ),
                )
            )
    elif closed_here:
        problems.append(
            Problem(
                "state",
                label,
                Message(
                    N_("reported %(outcome)s but this batch closed it"),
                    outcome=_reported(outcome, state),
                ),
            )
        )
    return problems


def _batch_lines(job: BatchJob) -> QuerySet[Line]:
    """Lines the job closed (or should have: still open on a document it reports closed), of
    the types that hold commitments."""
    kinds = [str(spec.code) for spec in all_specs() if spec.commitment]
    closed_docs = BatchItem.objects.filter(
        job_id=job.pk, state=ItemState.DONE, outcome="closed"
    ).values("document_id")
    return Line.objects.filter(
        document_id__in=closed_docs, document__doc_type__in=kinds, item_id__isnull=False
    ).filter(
        Q(close_state=CloseState.CLOSED, closed_in=F("document__close_seq"))
        | Q(close_state=CloseState.OPEN)
    )


def _commitment_problems(job: BatchJob) -> tuple[int, int, list[Problem]]:
    """(b): per item and commitment kind, recomputed-as-open − now = released."""
    if job.action != BatchAction.CLOSE:
        return 0, 0, []
    lines = _batch_lines(job)
    problems: list[Problem] = []
    # Lines that did not stay closed, or whose recorded release no longer equals their
    # unfulfilled remainder: named one by one.
    wrong = (
        lines.annotate(now_open=num(open_qty_expr()))
        .filter(
            ~Q(close_state=CloseState.CLOSED)
            | more_than(Abs(num(F("released_qty") - open_qty_expr())), dec(0))
        )
        .order_by("document_id", "line_no")
        .values_list(
            "document__doc_type",
            "document__number",
            "line_no",
            "close_state",
            "released_qty",
            "now_open",
        )
    )
    for doc_type, number, line_no, state, line_released, now_open in wrong:
        problems.append(
            Problem(
                "commitments",
                document_words(doc_type, number, doc_type_label_lazy(doc_type)),
                Message(
                    N_("line is %(state)s; released %(released)s, unfulfilled now %(open)s"),
                    state=_state(state),
                    released=_q(line_released),
                    open=_q(now_open),
                ),
                line_no,
            )
        )
    kinds = {str(spec.code): str(spec.commitment) for spec in all_specs() if spec.commitment}
    released_rows = lines.values("item_id", "document__doc_type").annotate(q=Sum("released_qty"))
    released: dict[tuple[int, str], Decimal] = {}
    for row in released_rows:
        key = (row["item_id"], kinds[row["document__doc_type"]])
        released[key] = released.get(key, Decimal(0)) + _dec(row["q"])
    item_ids = sorted({item for item, _kind in released})
    now = open_commitments_by_item(item_ids)
    as_open_rows = (
        Line.objects.filter(item_id__in=item_ids, document__doc_type__in=list(kinds))
        .filter(Q(close_state__in=LINE_SCOPE) | Q(pk__in=lines.values("pk")))
        .values("item_id", "document__doc_type")
        .annotate(q=Sum(open_qty_expr()))
    )
    as_open: dict[tuple[int, str], Decimal] = {}
    for row in as_open_rows:
        key = (row["item_id"], kinds[row["document__doc_type"]])
        as_open[key] = as_open.get(key, Decimal(0)) + _dec(row["q"])
    for key in sorted(set(released) | set(as_open)):
        item_id, kind = key
        current = now.get(item_id)
        current_qty = Decimal(0) if current is None else getattr(current, kind)
        difference = as_open.get(key, Decimal(0)) - current_qty
        if abs(difference - released.get(key, Decimal(0))) > QTY_EPS:
            problems.append(
                Problem(
                    "commitments",
                    Message(N_("item %(id)s"), id=item_id),
                    Message(
                        N_(
                            "%(kind)s: commitments fell by %(difference)s but the closed lines "
                            "recorded %(released)s released"
                        ),
                        kind=code_words(kind, COMMITMENT_LABELS.get(kind, kind)),
                        difference=_q(difference),
                        released=_q(released.get(key, Decimal(0))),
                    ),
                )
            )
    return len(item_ids), lines.count(), problems


def _dec(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _q(value: Any) -> str:
    return f"{_dec(value).quantize(QTY_EPS).normalize():f}"


def batch_verify(*, job_id: int, actor: AbstractBaseUser | None) -> PostCloseVerification:
    """Verify a batch job's effects and store the result. `actor` None: the system (the
    automatic run when a batch finishes)."""
    if actor is not None:
        require(actor, Perm.REPORT_VIEW, what=f"the verification of batch #{job_id}")
    job = BatchJob.objects.filter(pk=job_id).first()
    if job is None or (actor is not None and not verification_visible_to(actor, job)):
        raise NotFound(
            gettext_noop("no batch #%(id)s"), params={"id": job_id}, details={"field": "batch"}
        )
    documents, problems = _state_problems(job)
    items, lines, commitment_problems = _commitment_problems(job)
    problems += commitment_problems
    # The chain from the batch's first event on (it links to everything before it); the
    # whole chain is verified by `closeout audit verify` and the audit page.
    first = (
        AuditEvent.objects.filter(object_type=AuditObject.BATCH, object_id=str(job.pk))
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    chain = audit_chain_verify(since_seq=first or 1)
    if not chain.intact:
        problems.append(Problem("audit", Message(N_("audit chain")), chain.message or Message("")))
    with transaction.atomic():
        result = PostCloseVerification.objects.create(
            job=job,
            created_at=timezone.now(),
            run_by_id=actor.pk if actor is not None else None,
            passed=not problems,
            documents_checked=documents,
            lines_checked=lines,
            items_checked=items,
            chain_intact=chain.intact,
            chain_problem=chain.problem,
            problems=[p.as_dict() for p in problems[:MAX_STORED_PROBLEMS]],
            problem_count=len(problems),
        )
        audit_record(
            actor=actor,
            action=AuditAction.POST_CLOSE_VERIFIED,
            object_type=AuditObject.BATCH,
            object_id=job.pk,
            object_repr=str(job),
            data={
                "verification": result.pk,
                "passed": result.passed,
                "problems": len(problems),
                "documents": documents,
                "lines": lines,
                "items": items,
                "chain_intact": chain.intact,
            },
        )
    return result


def verification_visible_to(user: AbstractBaseUser, job: BatchJob) -> bool:
    """Whether `user` may read (and, with report.view, re-run) the verification of `job`: its
    creator, or a holder of report.view over every document of the batch. Anyone else is
    answered as for a batch that does not exist."""
    if job.created_by_id == user.pk:
        return True
    scope = documents_visible_to(user, Perm.REPORT_VIEW)
    if scope == Q():
        return True
    if not user_has_perm(user, Perm.REPORT_VIEW):
        return False
    inside = Document.objects.filter(scope).values("pk")
    outside = BatchItem.objects.filter(job_id=job.pk).filter(
        (Q(document__isnull=False) & ~Q(document_id__in=inside))
        | (Q(request__isnull=False) & ~Q(request__document_id__in=inside))
    )
    return not outside.exists()


def verification_latest(job: BatchJob) -> PostCloseVerification | None:
    return PostCloseVerification.objects.filter(job=job).select_related("run_by").first()


__all__ = ["batch_verify", "verification_latest", "verification_visible_to"]
