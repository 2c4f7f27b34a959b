"""The demo's approval routes, accounting periods and open requests."""

from datetime import timedelta
from decimal import Decimal

from closeout.access.models import Role
from closeout.approvals.models import (
    AccountingPeriod,
    ApprovalRoute,
    ApprovalStep,
    ExceptionCondition,
    RequestAction,
)
from closeout.approvals.submit import close_request_submit, reopen_request_submit
from closeout.core.models import PartnerKind
from closeout.core.services import item_get_or_create, partner_get_or_create
from closeout.demo.base import DEMO_COMPANY, PO_EAST, PO_WEST, BuilderBase, DemoEvent
from closeout.documents.models import (
    DocType,
    EventKind,
)
from closeout.documents.services import LineInput, document_upsert


class PolicyBuilder(BuilderBase):
    def approvals(self) -> None:
        """Approval routes (configured after the direct closes above, as a company would when
        it introduces approvals), a closed accounting period, and requests in the inbox."""

        roles = {role.code: role for role in Role.objects.all()}
        routes = [
            (
                "大额例外结案 Large exception close",
                RequestAction.CLOSE,
                ExceptionCondition.EXCEPTION,
                Decimal(50000),
                None,
                False,
                10,
                ["supervisor", "finance"],
            ),
            (
                "例外结案 Exception close",
                RequestAction.CLOSE,
                ExceptionCondition.EXCEPTION,
                None,
                Decimal(50000),
                False,
                20,
                ["supervisor"],
            ),
            (
                "反结案 Reopen",
                RequestAction.REOPEN,
                ExceptionCondition.ANY,
                None,
                None,
                False,
                10,
                ["finance"],
            ),
            (
                "已关账期间反结案 Reopen in a closed period",
                RequestAction.REOPEN,
                ExceptionCondition.ANY,
                None,
                None,
                True,
                1,
                ["finance"],
            ),
        ]
        for name, action, condition, low, high, closed_period, priority, steps in routes:
            route = ApprovalRoute.objects.create(
                name=name,
                action=action,
                condition=condition,
                min_open_value=low,
                max_open_value=high,
                org_unit=self.units[DEMO_COMPANY],
                for_closed_period=closed_period,
                priority=priority,
            )
            for order, role in enumerate(steps, start=1):
                ApprovalStep.objects.create(
                    route=route,
                    order=order,
                    role=roles[role],
                    name=roles[role].name_zh + " " + roles[role].name_en,
                    sla_hours=24 if order == 1 else 48,
                )
        first_of_month = self.today.replace(day=1)
        last_month_end = first_of_month - timedelta(days=1)
        earlier = last_month_end.replace(day=1) - timedelta(days=1)
        AccountingPeriod.objects.create(
            name=f"{earlier:%Y-%m}",
            company=self.units[DEMO_COMPANY].company_profile,
            start=earlier.replace(day=1),
            end=earlier,
            closed=True,
        )
        vendor = partner_get_or_create(
            code="DEMO-V-APPROVAL", name="演示供应商 Demo Supplier", kind=PartnerKind.SUPPLIER
        )
        item = item_get_or_create(code="DEMO-PART-1", name="演示物料 Demo part")
        for number, qty, price, received, remark in (
            (
                "PO-APPROVAL-1",
                Decimal(100),
                Decimal(80),
                Decimal(60),
                "供应商停产，余量取消 supplier discontinued the part",
            ),
            (
                "PO-APPROVAL-2",
                Decimal(1000),
                Decimal(95),
                Decimal(300),
                "合同终止 contract terminated by the supplier",
            ),
        ):
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PURCHASE_ORDER,
                number=number,
                # PO-APPROVAL-1 waits in the east group, PO-APPROVAL-2 in the west.
                org_unit=self.units[PO_EAST if number.endswith("1") else PO_WEST],
                partner=vendor,
                document_date=self.today - timedelta(days=40),
                expected_date=self.today - timedelta(days=20),
                lines=[LineInput(1, qty, price, item=item)],
            )
            self.post(
                document,
                DemoEvent(EventKind.RECEIPT, "RCV", self.today - timedelta(days=25), 1, received),
                number,
                "DEMO-ERP",
            )
            self.post(
                document,
                DemoEvent(
                    EventKind.INVOICE,
                    "INV",
                    self.today - timedelta(days=24),
                    1,
                    received,
                    received * price,
                ),
                number,
                "DEMO-ERP",
            )
            close_request_submit(
                actor=self.user("buyer"),
                document=document,
                reason_code="supplier_cannot_deliver",
                remark=remark,
            )
            self.tag("close_requested", document)
        # Closed by hand, then the supplier sends a credit note: a reopen request for finance.
        late = document_upsert(
            actor=self.user("erp"),
            doc_type=DocType.PURCHASE_ORDER,
            number="PO-APPROVAL-3",
            org_unit=self.units[PO_WEST],
            partner=vendor,
            document_date=self.today - timedelta(days=30),
            expected_date=self.today - timedelta(days=15),
            lines=[LineInput(1, Decimal(50), Decimal(40), item=item)],
        )
        for kind, suffix, days, qty, amount in (
            (EventKind.RECEIPT, "RCV", 14, Decimal(50), Decimal(0)),
            (EventKind.INVOICE, "INV", 13, Decimal(50), Decimal(2000)),
            (EventKind.PAYMENT, "PAY", 10, Decimal(0), Decimal(2000)),
        ):
            event = DemoEvent(kind, suffix, self.today - timedelta(days=days), 1, qty, amount)
            self.post(late, event, "PO-APPROVAL-3", "DEMO-ERP")
        self.close("buyer", late, "completed", "全部到货 all received")
        reopen_request_submit(
            actor=self.user("buyer"),
            document=late,
            reason_code="invoice_correction",
            remark="供应商开具红字发票需重新核对 the supplier issued a credit note",
        )
        self.tag("reopen_requested", late)
