"""Demo purchase orders (the Chinese and the US company) from AdventureWorks."""

import math
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.closing.dimension_services import line_dimension_close
from closeout.closing.models import ReasonAction
from closeout.closing.reasons import reason_code_save
from closeout.closing.services import document_hold, document_reopen
from closeout.core.models import Company, OrgUnit, PartnerKind
from closeout.demo.base import (
    AW_SOURCE,
    NEWEST_ORDER_AGE_DAYS,
    PO_EAST,
    PO_MAX_LINES,
    PO_ORDINARY,
    PO_WEST,
    US_COMPANY,
    US_ORDERS,
    US_PURCHASING,
    DemoEvent,
    DemoOrder,
    Planner,
    Scenario,
    day_of,
    dec,
    money,
    only_of,
)
from closeout.demo.settlements import SettlementBuilder
from closeout.demo_data import table_rows
from closeout.documents.models import (
    CloseState,
    DocType,
    Document,
    EventKind,
)
from closeout.documents.services import LineInput, document_get, document_upsert, event_post
from closeout.notifications.webhook_endpoints import webhook_endpoint_create
from closeout.reports.archive import archive_run


class PurchaseOrderBuilder(SettlementBuilder):
    def _po_orders(self, headers: list[dict[str, str]] | None = None) -> list[DemoOrder]:
        """The AdventureWorks purchase orders (those of `headers`, default all) with their
        derived timelines, dates shifted so that the newest order is 20 days old."""
        every = sorted(table_rows("PurchaseOrderHeader"), key=lambda h: int(h["PurchaseOrderID"]))
        details: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in table_rows("PurchaseOrderDetail"):
            details[row["PurchaseOrderID"]].append(row)
        vendors = {v["BusinessEntityID"]: v for v in table_rows("Vendor")}
        newest = max(day_of(h["OrderDate"]) for h in every)
        shift = (self.today - timedelta(days=NEWEST_ORDER_AGE_DAYS)) - newest
        return [
            self._po_timeline(
                h,
                sorted(
                    details[h["PurchaseOrderID"]], key=lambda d: int(d["PurchaseOrderDetailID"])
                ),
                vendors[h["VendorID"]],
                shift,
            )
            for h in (every if headers is None else headers)
        ]

    def purchase_orders(self) -> None:
        headers = sorted(table_rows("PurchaseOrderHeader"), key=lambda h: int(h["PurchaseOrderID"]))
        orders = self._po_orders(headers)
        status = {order.key: h["Status"] for order, h in zip(orders, headers, strict=True)}

        def is_short(o: DemoOrder) -> bool:
            return any(
                done < line.planned_qty * Decimal("0.98")
                for done, line in zip(o.done_qty, o.lines, strict=True)
            )

        rejected = [o for o in orders if status[o.key] == "3"]
        short = [o for o in orders if status[o.key] != "3" and is_short(o)]
        complete = [o for o in orders if status[o.key] != "3" and not is_short(o)]
        # "Old" orders were paid long enough ago to pass the grace days.
        old = [o for o in complete if max(o.pay_day) <= self.today - timedelta(days=35)]
        paid = [o for o in complete if max(o.pay_day) <= self.today]
        unpaid = [o for o in complete if max(o.invoice_day) <= self.today < max(o.pay_day)]
        received = [
            o
            for o in complete
            if all(e.day <= self.today for e in o.events if e.kind == EventKind.RECEIPT)
        ]
        plan: dict[str, str] = {}
        assign = Planner(plan, "purchase orders")
        # Small orders keep the build fast; a line-close needs a second line.
        small = [o for o in orders if len(o.lines) <= PO_MAX_LINES]
        payables = assign(only_of(old, small), "payable_source", 12)
        assign(only_of(paid, small), "over_received", 2)
        assign(only_of(unpaid, small), "over_received", 1)
        assign(only_of(paid, small), "invoice_mismatch", 2)
        assign(only_of(unpaid, small), "invoice_mismatch", 1)
        assign(only_of(paid, small), "partly_paid", 2)
        assign(only_of(unpaid, small), "unpaid", 3)
        assign(only_of(list(reversed(received)), small), "pending_receipt", 1)
        assign(only_of(list(reversed(received)), small), "on_hold", 1)
        assign(only_of(rejected, small), "closed_rejected", 3)
        assign(only_of(rejected, small), "short_open", 1)
        # A line close on an order that stays open: its other lines still wait for payment.
        assign(
            [o for o in short if len(o.lines) > 1 and max(o.pay_day) > self.today],
            "line_closed",
            1,
        )
        short_small = only_of(short, small)
        for name in ("closed_short", "closed_short_cannot", "closed_quarantined"):
            assign(short_small, name, 1)
        assign(short_small, "reopened", 2)
        assign(short_small, "short_open", 3)
        assign(small, "ordinary", PO_ORDINARY)
        for order in orders:
            if order.key in plan:
                unit = self.po_unit(order.number)
                self._po_document(order, plan[order.key], unit, short, unpaid)
        for index, order in enumerate(payables):
            self._settlement(order, index, DocType.PAYABLE, "AP", "SupplierInvoice", "buyer")

    def _po_timeline(
        self,
        h: dict[str, str],
        rows: list[dict[str, str]],
        vendor: dict[str, str],
        shift: timedelta,
    ) -> DemoOrder:
        """An AdventureWorks purchase order header and its rows as a demo order: dates shifted to
        the demo's year, quantities, prices and the vendor, ready for `_po_document`. Long
        because it maps each AdventureWorks column in turn."""
        order_day = day_of(h["OrderDate"]) + shift
        order = DemoOrder(
            key=f"PO{h['PurchaseOrderID']}",
            number=f"PO{h['PurchaseOrderID']}",
            order_day=order_day,
            expected_day=day_of(h["ShipDate"]) + shift,
            partner=(vendor["AccountNumber"], vendor["Name"], PartnerKind.SUPPLIER),
            lines=[],
            product_ids=[],
        )
        # Better-rated vendors get paid sooner (net 30); the others wait longer (net 45).
        terms = 30 if vendor["CreditRating"] in ("1", "2") else 45
        for no, row in enumerate(rows, start=1):
            qty, price = dec(row["OrderQty"]), dec(row["UnitPrice"])
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
            received, rejected = dec(row["ReceivedQty"]), dec(row["RejectedQty"])
            stocked = received - rejected
            receipt = max(order_day, day_of(row["DueDate"]) + shift)
            invoice, pay = receipt + timedelta(days=3), receipt + timedelta(days=3 + terms)
            order.done_qty.append(stocked)
            order.invoice_day.append(invoice)
            order.pay_day.append(pay)
            if received > 0:
                order.events.append(
                    DemoEvent(EventKind.RECEIPT, f"{no}-RCV", receipt, no, received)
                )
            if rejected > 0:
                order.events.append(
                    DemoEvent(
                        EventKind.RETURN,
                        f"{no}-RJT",
                        receipt + timedelta(days=1),
                        no,
                        rejected,
                        note="验收不合格退回 rejected at inspection",
                    )
                )
            if stocked > 0:
                amount = money(stocked * price)
                order.events.append(
                    DemoEvent(EventKind.INVOICE, f"{no}-INV", invoice, no, stocked, amount)
                )
                order.events.append(
                    DemoEvent(EventKind.PAYMENT, f"{no}-PAY", pay, no, amount=amount)
                )
        return order

    def _po_document(
        self,
        order: DemoOrder,
        plan: str,
        unit: OrgUnit,
        short: list[DemoOrder],
        unpaid: list[DemoOrder],
    ) -> None:
        """One AdventureWorks purchase order in the demo: the document, then the receipts, invoices
        and payments its plan calls for (complete, short, unpaid, over-received …), so that each
        demo scenario has a real order behind it. Long because each plan posts its own sequence
        of events."""
        events = self._po_adjust(order, plan)
        document = self._order_upsert(
            order, DocType.PURCHASE_ORDER, unit, f"PurchaseOrder/{order.number[2:]}"
        )
        prefix = f"AW-{order.number}"
        if plan == "on_hold":
            document_hold(
                actor=self.user("buyer"),
                document=document,
                reason="供应商质量争议，暂停收货 quality dispute with the supplier: hold receipts",
            )
            self.tag(Scenario.ON_HOLD, document)
            events = [e for e in events if e.kind == EventKind.RECEIPT]
            self.tag(Scenario.QUARANTINED, document)
        for event in events:
            self.post(document, event, prefix, AW_SOURCE)
        if plan in ("ordinary", "payable_source", "short_open", "unpaid"):
            if order in short or plan == "short_open":
                self.tag(Scenario.SHORT_DELIVERED, document)
            elif order in unpaid:
                self.tag(Scenario.UNPAID, document)
            return
        day = order.last_day(self.today) + timedelta(days=2)
        if plan == "over_received":
            self.tag(Scenario.OVER_RECEIVED, document)
        elif plan == "invoice_mismatch":
            self.tag(Scenario.INVOICE_MISMATCH, document)
        elif plan == "partly_paid":
            self.tag(Scenario.PARTLY_PAID, document)
        elif plan == "pending_receipt":
            self.tag(Scenario.PENDING_EVENT, document)
        elif plan == "closed_rejected":
            self.close(
                "buyer",
                document,
                "supplier_cannot_deliver",
                "验收全部不合格已退回，供应商无法补货 all goods failed inspection and went back; "
                "the supplier cannot replace them",
                day=day,
            )
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif plan == "line_closed":
            short_line = next(
                line.line_no
                for line, done in zip(order.lines, order.done_qty, strict=True)
                if done < line.planned_qty * Decimal("0.98")
            )
            self.close(
                "buyer",
                document,
                "short_delivery_accepted",
                "该行余量不再交货 the rest of this line will not be delivered",
                day=day,
                line_nos=[short_line],
            )
            self.tag(Scenario.LINE_CLOSED, document)
        elif plan in ("closed_short", "closed_short_cannot"):
            reason = (
                "short_delivery_accepted" if plan == "closed_short" else "supplier_cannot_deliver"
            )
            remark = (
                "供应商确认余量不再交货 the supplier confirmed the remainder will not come"
                if plan == "closed_short"
                else "供应商停产该零件 the supplier discontinued the part"
            )
            self.close("buyer", document, reason, remark, day=day)
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif plan in ("closed_quarantined", "reopened"):
            self.close(
                "buyer",
                document,
                "short_delivery_accepted",
                "供应商确认余量不再交货 the supplier confirmed the remainder will not come",
                day=day,
            )
            late = min(self.today, day + timedelta(days=4))
            for line, done in zip(order.lines, order.done_qty, strict=True):
                missing = line.planned_qty - done
                if missing > 0:
                    late_receipt = DemoEvent(
                        EventKind.RECEIPT,
                        f"{line.line_no}-RCV-LATE",
                        late,
                        line.line_no,
                        missing,
                        note="结案后到货 goods arrived after the close",
                    )
                    self.post(document, late_receipt, prefix, AW_SOURCE)
            if plan == "reopened":
                document_reopen(
                    actor=self.user("supervisor"),
                    document=document,
                    reason_code="late_delivery",
                    remark="供应商补发了余量，重新打开以入账 the remainder arrived after all",
                )
                self.tag(Scenario.CLOSED_THEN_REOPENED, document)
            else:
                self.tag(Scenario.QUARANTINED, document)

    def _po_adjust(self, order: DemoOrder, plan: str) -> list[DemoEvent]:
        """The order's events with the deliberate mistakes of its plan."""
        events = list(order.events)
        first = order.lines[0]
        if plan == "over_received":
            extra = Decimal(max(1, math.ceil(first.planned_qty / 10)))
            receipt = next(e for e in events if e.suffix == "1-RCV")
            events.append(
                DemoEvent(
                    EventKind.RECEIPT,
                    "1-RCV-EXTRA",
                    receipt.day + timedelta(days=1),
                    1,
                    extra,
                    note="供应商多发 the supplier shipped more than ordered",
                )
            )
        elif plan == "invoice_mismatch":
            for e in events:
                if e.suffix in ("1-INV", "1-PAY"):
                    e.amount = money(e.amount * Decimal("1.04"))
                    e.note = "发票单价高于订单价 invoiced above the order price"
        elif plan == "partly_paid":
            for e in events:
                if e.kind == EventKind.PAYMENT:
                    e.amount = money(e.amount * Decimal("0.6"))
                    e.note = "部分付款 part payment"
        elif plan == "pending_receipt":
            last = max(
                (e for e in events if e.kind == EventKind.RECEIPT), key=lambda e: e.line_no or 0
            )
            last.pending = True
            last.note = "待检验 awaiting inspection"
            events = [
                e for e in events if not (e.line_no == last.line_no and e.kind != EventKind.RECEIPT)
            ]
        return events

    def closed_for_receiving(self) -> None:
        """One short-delivered purchase order closed for receiving (收货关闭): its open quantity
        leaves the order book while its invoicing and payment stay open."""
        for label in self.scenarios[Scenario.SHORT_DELIVERED]:
            doc_type, number = label.split(" ", 1)
            if doc_type != DocType.PURCHASE_ORDER:
                continue
            document = document_get(DocType.PURCHASE_ORDER, number)
            short = [
                line.line_no
                for line in document.lines.filter(close_state=CloseState.OPEN)
                if line.fulfilled_qty < line.planned_qty
            ]
            if document.close_state != CloseState.OPEN or not short:
                continue
            line_dimension_close(
                actor=self.user("buyer"),
                document=document,
                dimension="receiving",
                reason_code="short_delivery_accepted",
                remark="供应商停产，余量不再交货 the supplier discontinued the item",
                line_nos=short[:1],
            )
            # No longer short for the checklist: the receiving close accepted the shortfall.
            self.scenarios[Scenario.SHORT_DELIVERED].remove(label)
            self.tag(Scenario.CLOSED_FOR_RECEIVING, document)
            return

    def archived_last_year(self) -> None:
        """Two purchase orders of last year, received, invoiced, paid and closed by hand more
        than a year ago, then archived (最终结案) by the archive run: the final state is visible."""

        partner = self.partners[min(self.partners)]
        item = self.items[min(self.items)]
        for n, age in enumerate((480, 450), start=1):
            day = self.today - timedelta(days=age)
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PURCHASE_ORDER,
                number=f"PO-ARCH-{n:02d}",
                org_unit=self.units[PO_EAST if n == 1 else PO_WEST],
                partner=partner,
                document_date=day,
                lines=[
                    LineInput(line_no=1, planned_qty=Decimal(20), unit_price=Decimal(15), item=item)
                ],
            )
            for kind, qty, amount, after in (
                (EventKind.RECEIPT, 20, 0, 10),
                (EventKind.INVOICE, 20, 300, 12),
                (EventKind.PAYMENT, 0, 300, 40),
            ):
                event_post(
                    actor=self.user("erp"),
                    document=document,
                    kind=kind,
                    external_id=f"DEMO-ARCH-{n}-{kind}",
                    line_no=1,
                    quantity=qty,
                    amount=amount,
                    occurred_at=self.at(day + timedelta(days=after)),
                )
            self.close("buyer", document, "completed", "", day=day + timedelta(days=45))
            self.tag(Scenario.ARCHIVED, document)
        archive_run(doc_type=DocType.PURCHASE_ORDER)

    def _us_orders(self, headers: list[dict[str, str]]) -> list[dict[str, str]]:
        """Two orders the Chinese company has too (the same numbers), then orders it does not
        have."""
        loaded = set(
            Document.objects.filter(doc_type=DocType.PURCHASE_ORDER).values_list(
                "number", flat=True
            )
        )
        numbered = [(f"PO{h['PurchaseOrderID']}", h) for h in headers]
        shared = [h for n, h in numbered if n in loaded][:2]
        others = [h for n, h in numbered if n not in loaded]
        return shared + others[: US_ORDERS - len(shared)]

    def _us_settings(self) -> None:
        """The US company's own reason code and webhook endpoint (issue 15): the code is
        offered only on its documents, the endpoint hears only of its documents."""
        us = Company.objects.get(unit=self.units[US_COMPANY])
        reason_code_save(
            actor=self.user("admin"),
            company=us,
            code="us_tariff_change",
            action=ReasonAction.CLOSE,
            label_zh="美国关税变化",
            label_en="US tariff change",
        )
        webhook_endpoint_create(
            actor=self.user("admin"),
            company=us,
            name="US ERP (demo)",
            url="https://erp-us.example.invalid/closeout/events",
            events=["request.approved", "request.rejected"],
        )

    def us_company(self) -> None:
        """The US company's purchase orders (after the sweep, so the Chinese company's figures
        stay as they are): AdventureWorks orders in dollars at rate 1, several with the same
        number as an order of the Chinese company; the administrator, the auditor and the ERP
        interface hold their roles there too (the group view)."""
        roles = {role.code: role for role in Role.objects.all()}
        for username, role in (("admin", "admin"), ("auditor", "auditor"), ("erp", "integration")):
            grant_create(
                actor=None,
                user=self.user(username),
                role=roles[role],
                org_unit=self.units[US_COMPANY],
                reason="closeout demo: group view",
            )
        self._us_settings()
        headers = sorted(table_rows("PurchaseOrderHeader"), key=lambda h: int(h["PurchaseOrderID"]))
        chosen = self._us_orders(headers)
        for h, order in zip(chosen, self._po_orders(chosen), strict=True):
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PURCHASE_ORDER,
                number=order.number,
                org_unit=self.units[US_PURCHASING],
                partner=self.partner(order),
                document_date=order.order_day,
                expected_date=order.expected_day,
                lines=self.lines_of(order),
                currency="USD",
                source_system=AW_SOURCE,
                external_id=f"US/PurchaseOrder/{h['PurchaseOrderID']}",
            )
            for event in order.events:
                self.post(document, event, f"AWUS-{order.number}", AW_SOURCE)
