"""Stock count (库存盘点): lines hold the book quantity; counts and posted adjustments."""

from closeout.documents.models import DocType, EventKind
from closeout.documents.types import DocTypeSpec, Effect, Op

SPEC = DocTypeSpec(
    code=DocType.STOCK_COUNT,
    label_zh="库存盘点",
    label_en="Stock count",
    effects={
        EventKind.COUNT_RESULT: (Effect("counted_qty", "quantity", Op.SET),),
        EventKind.STOCK_ADJUSTMENT: (Effect("adjusted_qty", "quantity"),),
    },
)
