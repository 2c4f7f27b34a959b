"""Sales order (销售订单): shipments, customer returns, invoices, collections."""

from closeout.documents.models import DocType, EventKind
from closeout.documents.types import Commitment, DocTypeSpec, Effect, Op

SPEC = DocTypeSpec(
    code=DocType.SALES_ORDER,
    label_zh="销售订单",
    label_en="Sales order",
    measure_names={"fulfilled_qty": "shipped", "settled_amount": "collected"},
    effects={
        EventKind.SHIPMENT: (Effect("fulfilled_qty", "quantity"),),
        # A customer return takes goods back and waits for its credit note.
        EventKind.RETURN: (
            Effect("fulfilled_qty", "quantity", Op.SUBTRACT),
            Effect("returns_open_qty", "quantity"),
        ),
        EventKind.INVOICE: (
            Effect("invoiced_qty", "quantity"),
            Effect("invoiced_amount", "amount"),
        ),
        EventKind.CREDIT_NOTE: (
            Effect("invoiced_qty", "quantity", Op.SUBTRACT),
            Effect("invoiced_amount", "amount", Op.SUBTRACT),
            Effect("returns_open_qty", "quantity", Op.CLEAR),
        ),
        EventKind.PAYMENT: (Effect("settled_amount", "amount"),),
    },
    commitment=Commitment.RESERVED,
)
