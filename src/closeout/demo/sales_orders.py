"""Demo sales orders from AdventureWorks, with customer returns and part shipments."""

from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from closeout.closing.services import document_hold, document_reopen
from closeout.core.models import OrgUnit, PartnerKind
from closeout.demo.base import (
    AW_SOURCE,
    NEWEST_ORDER_AGE_DAYS,
    SO_DEPT,
    SO_MAX_LINES,
    SO_ORDINARY,
    DemoEvent,
    DemoOrder,
    Planner,
    Scenario,
    biggest_line,
    day_of,
    dec,
    half_of,
    money,
)
from closeout.demo.settlements import SettlementBuilder
from closeout.demo_data import table_rows
from closeout.documents.models import (
    DocType,
    EventKind,
)
from closeout.documents.services import LineInput


class SalesOrderBuilder(SettlementBuilder):
    def sales_orders(self) -> None:
        headers = sorted(table_rows("SalesOrderHeader"), key=lambda h: int(h["SalesOrderID"]))
        details: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in table_rows("SalesOrderDetail"):
            details[row["SalesOrderID"]].append(row)
        customers = {c["CustomerID"]: c for c in table_rows("Customer")}
        newest = max(day_of(h["OrderDate"]) for h in headers)
        shift = (self.today - timedelta(days=NEWEST_ORDER_AGE_DAYS)) - newest
        online: list[DemoOrder] = []
        reseller: list[DemoOrder] = []
        for h in headers:
            rows = sorted(details[h["SalesOrderID"]], key=lambda d: int(d["SalesOrderDetailID"]))
            order = self._so_timeline(h, rows, customers[h["CustomerID"]], shift)
            (online if h["OnlineOrderFlag"] == "1" else reseller).append(order)
        plan: dict[str, str] = {}
        assign = Planner(plan, "sales orders")
        online = [o for o in online if len(o.lines) <= SO_MAX_LINES]
        reseller = [o for o in reseller if len(o.lines) <= SO_MAX_LINES]
        for name in ("open_return", "returned_closed", "late_return"):
            assign(online, name, 2)
        # A short shipment needs a line of at least two pieces.
        splittable = [o for o in reseller if biggest_line(o).planned_qty >= 2]
        for name in ("short_open", "short_closed", "short_reopened"):
            assign(splittable, name, 1)
        for name in ("invoice_mismatch", "partly_paid", "unpaid"):
            assign(reseller, name, 2)
        assign(reseller, "on_hold", 1)
        receivables = assign(reseller, "receivable_source", 12)
        assign(online, "ordinary", SO_ORDINARY)
        unit = self.units[SO_DEPT]
        for order in sorted(online + reseller, key=lambda o: o.number):
            # The orders behind the receivables are not loaded themselves, to keep the build
            # fast: each receivable carries its order's line amounts.
            if plan.get(order.key, "receivable_source") != "receivable_source":
                self._so_document(order, plan[order.key], unit)
        for index, order in enumerate(receivables):
            self._settlement(order, index, DocType.RECEIVABLE, "AR", "SalesInvoice", "finance")

    def _so_timeline(
        self,
        h: dict[str, str],
        rows: list[dict[str, str]],
        customer: dict[str, str],
        shift: timedelta,
    ) -> DemoOrder:
        name = (
            f"经销商 reseller store {customer['StoreID']}"
            if customer["StoreID"] and not customer["PersonID"]
            else f"网上客户 online customer {customer['PersonID'] or customer['CustomerID']}"
        )
        order_day = day_of(h["OrderDate"]) + shift
        ship = day_of(h["ShipDate"]) + shift
        order = DemoOrder(
            key=h["SalesOrderNumber"],
            number=h["SalesOrderNumber"],
            order_day=order_day,
            expected_day=day_of(h["DueDate"]) + shift,
            partner=(customer["AccountNumber"], name, PartnerKind.CUSTOMER),
            lines=[],
            product_ids=[],
        )
        online = h["OnlineOrderFlag"] == "1"
        # Online orders are paid by card when they ship; resellers pay net 30.
        pay = ship if online else ship + timedelta(days=30)
        for no, row in enumerate(rows, start=1):
            qty = dec(row["OrderQty"])
            price = (dec(row["UnitPrice"]) * (1 - dec(row["UnitPriceDiscount"]))).quantize(
                Decimal("0.000001"), rounding=ROUND_HALF_UP
            )
            product = self.products[row["ProductID"]]
            order.lines.append(
                LineInput(
                    line_no=no,
                    planned_qty=qty,
                    unit_price=price,
                    description=product["Name"],
                )
            )
            order.product_ids.append(row["ProductID"])
            amount = money(qty * price)
            order.done_qty.append(qty)
            order.invoice_day.append(ship)
            order.pay_day.append(pay)
            order.events.append(DemoEvent(EventKind.SHIPMENT, f"{no}-SHP", ship, no, qty))
            order.events.append(DemoEvent(EventKind.INVOICE, f"{no}-INV", ship, no, qty, amount))
            order.events.append(DemoEvent(EventKind.PAYMENT, f"{no}-PAY", pay, no, amount=amount))
        return order

    def _so_adjust(self, order: DemoOrder, plan: str) -> list[DemoEvent]:
        events = list(order.events)
        if plan.startswith("short_"):
            # The line with the largest quantity ships half now; the rest is backordered.
            big = biggest_line(order)
            half = half_of(big.planned_qty)
            for e in events:
                if e.line_no != big.line_no:
                    continue
                if e.kind in (EventKind.SHIPMENT, EventKind.INVOICE):
                    e.quantity = half
                if e.kind in (EventKind.INVOICE, EventKind.PAYMENT):
                    e.amount = money(half * big.unit_price)
        elif plan == "invoice_mismatch":
            for e in events:
                if e.suffix in ("1-INV", "1-PAY"):
                    e.amount = money(e.amount * Decimal("1.05"))
                    e.note = "发票未扣折扣 the invoice missed the discount"
        elif plan == "partly_paid":
            for e in events:
                if e.kind == EventKind.PAYMENT:
                    e.amount = money(e.amount * Decimal("0.7"))
                    e.note = "部分收款 part payment"
        elif plan in ("unpaid", "on_hold"):
            events = [e for e in events if e.kind != EventKind.PAYMENT]
        return events

    def _so_document(self, order: DemoOrder, plan: str, unit: OrgUnit) -> None:
        """One AdventureWorks sales order in the demo: the document, its shipments, invoices and
        collections as its plan calls for, and the scenario it stands for (held, closed,
        reopened …). Long because each plan posts its own sequence of events."""
        events = self._so_adjust(order, plan)
        document = self._order_upsert(
            order, DocType.SALES_ORDER, unit, f"SalesOrder/{order.number[2:]}"
        )
        prefix = f"AW-{order.number}"
        for event in events:
            self.post(document, event, prefix, AW_SOURCE)
        ship = order.events[0].day
        first = order.lines[0]
        if plan == "ordinary":
            return
        if plan == "open_return":
            self.post(
                document,
                DemoEvent(
                    EventKind.RETURN,
                    "1-RET",
                    ship + timedelta(days=6),
                    1,
                    Decimal(1),
                    note="客户退货，待开红字发票 customer return, credit note to follow",
                ),
                prefix,
                AW_SOURCE,
            )
            self.tag(Scenario.OPEN_RETURN, document)
        elif plan == "returned_closed":
            back = ship + timedelta(days=5)
            refund = money(first.planned_qty * first.unit_price)
            for event in (
                DemoEvent(EventKind.RETURN, "1-RET", back, 1, first.planned_qty, note="客户退货"),
                DemoEvent(
                    EventKind.CREDIT_NOTE,
                    "1-CRN",
                    back + timedelta(days=1),
                    1,
                    first.planned_qty,
                    refund,
                    note="红字发票 credit note for the return",
                ),
            ):
                self.post(document, event, prefix, AW_SOURCE)
            self.close(
                "seller",
                document,
                "goods_returned",
                "客户退货并已退款 the customer returned the goods and was refunded",
                day=back + timedelta(days=2),
            )
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif plan == "late_return":
            self.late_returns.append((document, order))
        elif plan == "short_open":
            self.tag(Scenario.SHORT_DELIVERED, document)
        elif plan in ("short_closed", "short_reopened"):
            self.close(
                "seller",
                document,
                "customer_change",
                "客户取消了缺货部分 the customer cancelled the backordered remainder",
                day=order.last_day(self.today) + timedelta(days=3),
            )
            if plan == "short_closed":
                self.tag(Scenario.CLOSED_BY_HAND, document)
                return
            document_reopen(
                actor=self.user("supervisor"),
                document=document,
                reason_code="customer_reorder",
                remark="客户又要求补发余量 the customer asks for the remainder after all",
            )
            big = biggest_line(order)
            shipped = half_of(big.planned_qty)
            self.post(
                document,
                DemoEvent(
                    EventKind.SHIPMENT,
                    f"{big.line_no}-SHP2",
                    self.today - timedelta(days=2),
                    big.line_no,
                    big.planned_qty - shipped,
                    note="补发余量 remainder shipped",
                ),
                prefix,
                AW_SOURCE,
            )
            self.tag(Scenario.CLOSED_THEN_REOPENED, document)
        elif plan == "invoice_mismatch":
            self.tag(Scenario.INVOICE_MISMATCH, document)
        elif plan == "partly_paid":
            self.tag(Scenario.PARTLY_PAID, document)
        elif plan == "unpaid":
            self.tag(Scenario.UNPAID, document)
        elif plan == "on_hold":
            document_hold(
                actor=self.user("seller"),
                document=document,
                reason="客户超出信用额度，冻结 the customer is over its credit limit",
            )
            for event in order.events:
                if event.kind == EventKind.PAYMENT:
                    self.post(document, event, prefix, AW_SOURCE)
            self.tag(Scenario.ON_HOLD, document)
            self.tag(Scenario.QUARANTINED, document)
