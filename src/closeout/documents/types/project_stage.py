"""Project stage (项目阶段): lines are work packages with tasks and a cost budget."""

from closeout.documents.models import DocType, EventKind
from closeout.documents.types import DocTypeSpec, Effect

SPEC = DocTypeSpec(
    code=DocType.PROJECT_STAGE,
    label_zh="项目阶段",
    label_en="Project stage",
    effects={
        EventKind.TASK_COMPLETION: (Effect("fulfilled_qty", "quantity"),),
        EventKind.COST_POSTING: (Effect("actual_cost", "amount"),),
    },
    header_events=frozenset({EventKind.ACCEPTANCE}),
    measure_names={"fulfilled_qty": "tasks done"},
)
