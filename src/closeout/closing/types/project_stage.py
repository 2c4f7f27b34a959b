"""Project stage (项目阶段): the rules that decide its close and what a close releases."""

from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Greatest

from closeout.closing import rules as r
from closeout.closing.models import Severity
from closeout.closing.types import CloseSpec
from closeout.documents.models import BusinessEvent, EventKind, EventStatus


def _pending_costs() -> Exists:
    return Exists(
        BusinessEvent.objects.filter(
            document_id=OuterRef("pk"), kind=EventKind.COST_POSTING, status=EventStatus.PENDING
        )
    )


CLOSE = CloseSpec(
    rules=(
        r.Rule(
            code="tasks_done",
            label_zh="所有任务已完成",
            label_en="All tasks done",
            severity=Severity.EXCEPTION,
            scope=r.Scope.LINE,
            failing=lambda p: r.less_than(F("fulfilled_qty"), F("planned_qty")),
            measures=lambda p: {"tasks": F("planned_qty"), "done": F("fulfilled_qty")},
            threshold=lambda p: "done = tasks, per line",
            hint_zh="完成剩余任务，或以任务取消原因手工结案。",
            hint_en="Finish the remaining tasks, or close by hand with a cancellation reason.",
        ),
        r.Rule(
            code="costs_posted",
            label_zh="所有成本已过账",
            label_en="All costs posted",
            severity=Severity.BLOCKING,
            scope=r.Scope.DOCUMENT,
            failing=lambda p: Q(_pending_costs()),
            measures=lambda p: {"pending_costs": _pending_costs()},
            threshold=lambda p: "no pending cost posting",
            hint_zh="确认待过账的成本。",
            hint_en="Confirm the pending cost postings.",
        ),
        r.Rule(
            code="acceptance_recorded",
            label_zh="已记录验收",
            label_en="Acceptance recorded",
            severity=Severity.EXCEPTION,
            scope=r.Scope.DOCUMENT,
            failing=lambda p: Q(accepted_on__isnull=True),
            measures=lambda p: {"accepted_on": F("accepted_on")},
            threshold=lambda p: "an acceptance date",
            hint_zh="录入客户或内部验收。",
            hint_en="Record the acceptance.",
        ),
        r.Rule(
            code="cost_within_budget",
            label_zh="成本在预算容差内",
            label_en="Cost within budget tolerance",
            severity=Severity.WARNING,
            scope=r.Scope.LINE,
            failing=lambda p: r.more_than(
                F("actual_cost") * r.dec(100),
                F("planned_amount") * r.dec(100 + p.budget_tolerance_pct),
            ),
            measures=lambda p: {"budget": F("planned_amount"), "actual_cost": F("actual_cost")},
            threshold=lambda p: (
                f"cost ≤ {r._pct(100 + p.budget_tolerance_pct)}% of budget, per line"
            ),
            hint_zh="成本超预算：请说明原因。",
            hint_en="Cost over budget: explain in the remark.",
        ),
        r.no_line_on_hold(),
        r.events_settled(exclude_kinds=(EventKind.COST_POSTING,)),
        r.grace_period(),
    ),
    released_qty=lambda: r.dec(0),
    released_value=lambda: Greatest(r.num(F("planned_amount") - F("actual_cost")), r.dec(0)),
)
