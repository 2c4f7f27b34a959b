"""Purchase order (采购订单): receipts, returns to supplier, supplier invoices, payments."""

from closeout.documents.models import DocType, EventKind
from closeout.documents.types import Commitment, DocTypeSpec, Effect, Op

SPEC = DocTypeSpec(
    code=DocType.PURCHASE_ORDER,
    label_zh="采购订单",
    label_en="Purchase order",
    measure_names={"fulfilled_qty": "received", "settled_amount": "paid"},
    effects={
        EventKind.RECEIPT: (Effect("fulfilled_qty", "quantity"),),
        EventKind.RETURN: (Effect("fulfilled_qty", "quantity", Op.SUBTRACT),),
        EventKind.INVOICE: (
            Effect("invoiced_qty", "quantity"),
            Effect("invoiced_amount", "amount"),
        ),
        EventKind.CREDIT_NOTE: (
            Effect("invoiced_qty", "quantity", Op.SUBTRACT),
            Effect("invoiced_amount", "amount", Op.SUBTRACT),
        ),
        EventKind.PAYMENT: (Effect("settled_amount", "amount"),),
    },
    commitment=Commitment.ON_ORDER,
)
