"""Demo stock counts of the finished-goods store."""

from datetime import timedelta
from decimal import Decimal

from closeout.demo.base import USD_RATE, WH_DEPT, BuilderBase, DemoEvent, Scenario, dec
from closeout.demo_data import table_rows
from closeout.documents.models import (
    DocType,
    EventKind,
)
from closeout.documents.services import LineInput, document_upsert


class StockCountBuilder(BuilderBase):
    def stock_counts(self) -> None:
        """Six counts of the finished-goods store, six products each."""
        rows = sorted(table_rows("ProductInventory"), key=lambda r: int(r["ProductID"]))
        unit = self.units[WH_DEPT]
        # Per count: variances by line (index), whether adjustments are posted, lines counted.
        plans: list[tuple[str, dict[int, int], bool, int]] = [
            (Scenario.VARIANCE_POSTED, {}, True, 6),
            (Scenario.VARIANCE_POSTED, {0: -2, 2: 1, 3: -1}, True, 6),
            (Scenario.VARIANCE_UNPOSTED, {1: -2, 4: 3}, False, 6),
            (Scenario.VARIANCE_LARGE, {0: -4, 3: -5}, True, 6),
            (Scenario.NOT_COUNTED, {1: 1}, True, 4),
            (Scenario.CLOSED_BY_HAND, {2: -5}, True, 6),
        ]
        for n, (scenario, variances, post_adjustments, counted) in enumerate(plans, start=1):
            chunk = rows[(n - 1) * 6 : n * 6]
            count_day = self.today - timedelta(days=14 - 2 * n)
            lines = [
                LineInput(
                    line_no=i + 1,
                    planned_qty=dec(r["Quantity"]),
                    unit_price=dec(self.products[r["ProductID"]]["StandardCost"]),
                    item=self.item(r["ProductID"]),
                    description=self.products[r["ProductID"]]["Name"],
                )
                for i, r in enumerate(chunk)
            ]
            number = f"SC-AW7-{n:02d}"
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.STOCK_COUNT,
                number=number,
                org_unit=unit,
                document_date=count_day - timedelta(days=1),
                expected_date=count_day,
                lines=lines,
                currency="USD",
                exchange_rate=USD_RATE,
            )
            for i, line in enumerate(lines[:counted]):
                variance = Decimal(variances.get(i, 0))
                self.post(
                    document,
                    DemoEvent(
                        EventKind.COUNT_RESULT,
                        f"{line.line_no}-CNT",
                        count_day,
                        line.line_no,
                        line.planned_qty + variance,
                    ),
                    number,
                    "wms",
                )
                if variance and post_adjustments:
                    self.post(
                        document,
                        DemoEvent(
                            EventKind.STOCK_ADJUSTMENT,
                            f"{line.line_no}-ADJ",
                            count_day + timedelta(days=1),
                            line.line_no,
                            variance,
                            note="盘点差异调整 count variance adjustment",
                        ),
                        number,
                        "wms",
                    )
            if scenario == Scenario.CLOSED_BY_HAND:
                self.close(
                    "keeper",
                    document,
                    "data_correction",
                    "复盘确认：5 件运输损坏已报废 recount confirmed 5 units damaged in transit",
                    day=count_day + timedelta(days=2),
                )
            self.tag(scenario, document)
