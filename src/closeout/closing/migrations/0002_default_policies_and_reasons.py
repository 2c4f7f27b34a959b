"""Default close policy per document type and the standard reason codes."""

from decimal import Decimal

from django.db import migrations

POLICIES = {
    "purchase_order": {
        "under_qty_pct": 2,
        "over_qty_pct": 5,
        "amount_tolerance_abs": 1,
        "amount_tolerance_pct": Decimal("0.5"),
        "grace_days": 7,
    },
    "sales_order": {
        "amount_tolerance_abs": 1,
        "amount_tolerance_pct": Decimal("0.5"),
        "grace_days": 7,
    },
    "stock_count": {"variance_value_limit": 5000},
    "receivable": {
        "write_off_amount": 10,
        "amount_tolerance_abs": 1,
        "amount_tolerance_pct": Decimal("0.5"),
        "grace_days": 30,
    },
    "payable": {
        "write_off_amount": 10,
        "amount_tolerance_abs": 1,
        "amount_tolerance_pct": Decimal("0.5"),
        "grace_days": 30,
    },
    "project_stage": {"budget_tolerance_pct": 10, "grace_days": 14},
}

REASONS = [
    ("close", "completed", "正常完成", "Business completed", False),
    ("close", "short_delivery_accepted", "接受短交", "Short delivery accepted", False),
    ("close", "supplier_cannot_deliver", "供应商无法交货", "Supplier cannot deliver", False),
    ("close", "contract_terminated", "合同终止", "Contract terminated", False),
    ("close", "customer_change", "客户变更", "Customer change", False),
    ("close", "goods_returned", "货物退回", "Goods returned", False),
    ("close", "data_correction", "数据更正", "Data correction", False),
    ("close", "write_off", "小额核销", "Small balance write-off", False),
    ("close", "task_cancelled", "任务取消", "Tasks cancelled", False),
    ("close", "auto_rules_met", "系统自动结案", "Automatic close: all rules met", True),
    ("reopen", "wrong_close", "误结案", "Closed by mistake", False),
    ("reopen", "late_delivery", "后续到货", "Goods arrived after close", False),
    ("reopen", "invoice_correction", "发票更正", "Invoice correction", False),
    ("reopen", "customer_reorder", "客户追加", "Customer asks for the remainder", False),
    ("reopen", "audit_finding", "审计发现", "Audit finding", False),
]


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    policy = apps.get_model("closing", "ClosePolicy")
    for doc_type, values in POLICIES.items():
        policy.objects.get_or_create(doc_type=doc_type, org_unit=None, defaults=values)
    reason = apps.get_model("closing", "ReasonCode")
    for action, code, zh, en, system in REASONS:
        reason.objects.get_or_create(
            code=code, defaults={"action": action, "label_zh": zh, "label_en": en, "system": system}
        )


class Migration(migrations.Migration):
    dependencies = [("closing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
