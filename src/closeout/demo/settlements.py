"""Demo receivables and payables, one per AdventureWorks order invoice."""

from datetime import timedelta
from decimal import Decimal

from closeout.closing.services import document_reopen
from closeout.demo.base import (
    AW_SOURCE,
    SO_DEPT,
    USD_RATE,
    BuilderBase,
    DemoEvent,
    DemoOrder,
    Scenario,
    money,
)
from closeout.documents.models import (
    DocType,
    EventKind,
)
from closeout.documents.services import LineInput, document_upsert


class SettlementBuilder(BuilderBase):
    def _settlement(
        self, order: DemoOrder, index: int, doc_type: DocType, code: str, ext: str, closer: str
    ) -> None:
        """A receivable or payable for an order's invoice. The index picks the situation:
        0-2 paid long ago, 3 paid recently, 4 a small balance left, 5-6 part-paid, 7 invoiced
        above the order, 8 unpaid, 9 written off by hand, 10 closed then reopened, 11 closed
        and then a late payment arrives."""
        unit = self.po_unit(order.number) if doc_type == DocType.PAYABLE else self.units[SO_DEPT]
        invoice_day = min(order.invoice_day)
        lines: list[LineInput] = []
        for line, done in zip(self.lines_of(order), order.done_qty, strict=True):
            if done > 0:
                lines.append(
                    LineInput(
                        line_no=len(lines) + 1,
                        planned_qty=done,
                        unit_price=line.unit_price,
                        item=line.item,
                        description=line.description,
                        planned_amount=money(done * line.unit_price),
                    )
                )
        number = f"{code}-{order.number}"
        document = document_upsert(
            actor=self.user("erp"),
            doc_type=doc_type,
            number=number,
            org_unit=unit,
            partner=self.partner(order),
            document_date=invoice_day,
            expected_date=invoice_day + timedelta(days=30),
            lines=lines,
            currency="USD",
            exchange_rate=USD_RATE,
            source_system=AW_SOURCE,
            external_id=f"{ext}/{order.number}",
        )
        pay_day = invoice_day + timedelta(days=30)
        if index == 3:
            pay_day = self.today - timedelta(days=5)
        prefix = f"AW-{number}"
        for line in lines:
            amount = line.planned_amount or Decimal(0)
            invoiced = (
                money(amount * Decimal("1.03")) if index == 7 and line.line_no == 1 else amount
            )
            self.post(
                document,
                DemoEvent(
                    EventKind.INVOICE,
                    f"{line.line_no}-INV",
                    invoice_day,
                    line.line_no,
                    line.planned_qty,
                    invoiced,
                ),
                prefix,
                AW_SOURCE,
            )
            paid = invoiced
            if index == 4 and line.line_no == 1:
                paid = invoiced - Decimal("6.50")
            elif index in (5, 6):
                paid = money(invoiced * Decimal("0.6"))
            elif index in (9, 10, 11) and line.line_no == 1:
                paid = invoiced - min(Decimal(250), invoiced / 2)
            if index != 8:
                self.post(
                    document,
                    DemoEvent(
                        EventKind.PAYMENT,
                        f"{line.line_no}-PAY",
                        pay_day,
                        line.line_no,
                        amount=money(paid),
                        note="扣银行手续费 bank charges deducted" if index == 4 else "",
                    ),
                    prefix,
                    AW_SOURCE,
                )
        tags = {
            0: Scenario.PAID,
            1: Scenario.PAID,
            2: Scenario.PAID,
            3: Scenario.PAID,
            4: Scenario.SMALL_BALANCE,
            5: Scenario.PARTLY_PAID,
            6: Scenario.PARTLY_PAID,
            7: Scenario.INVOICE_MISMATCH,
            8: Scenario.UNPAID,
        }
        if index in tags:
            self.tag(tags[index], document)
            return
        self.close(
            closer,
            document,
            "write_off",
            "差额经批准核销 the short payment is written off as agreed with the partner",
            day=pay_day + timedelta(days=3),
        )
        if index == 9:
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif index == 10:
            document_reopen(
                actor=self.user("supervisor"),
                document=document,
                reason_code="audit_finding",
                remark="审计发现核销未经审批 the write-off lacked approval",
            )
            self.tag(Scenario.CLOSED_THEN_REOPENED, document)
        else:
            first = lines[0]
            self.post(
                document,
                DemoEvent(
                    EventKind.PAYMENT,
                    "1-PAY-LATE",
                    min(self.today, pay_day + timedelta(days=9)),
                    1,
                    amount=min(Decimal(250), (first.planned_amount or Decimal(0)) / 2),
                    note="核销后收到余款 the balance arrived after the write-off",
                ),
                prefix,
                AW_SOURCE,
            )
            self.tag(Scenario.QUARANTINED, document)
