"""What receivables and payables share: invoices settled by payments (their close rules:
`closeout.closing.types.settlement`)."""

from closeout.documents.models import DocType, EventKind
from closeout.documents.types import DocTypeSpec, Effect, Op


def settlement_spec(code: DocType, zh: str, en: str) -> DocTypeSpec:
    return DocTypeSpec(
        code=code,
        label_zh=zh,
        label_en=en,
        measure_names={"settled_amount": "collected" if code == DocType.RECEIVABLE else "paid"},
        effects={
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
    )
