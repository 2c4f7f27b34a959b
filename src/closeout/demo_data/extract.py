"""Rebuild this folder's AdventureWorks subset from the full CSVs (not used at run time).

    python -m closeout.demo_data.extract /work/shared/datasets/adventureworks

The selection is deterministic; README.md in this folder says which rows it takes and why.
"""

import csv
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent

PO_LAST_DATE = "2014-08-03"  # the one later PO (2014-09-22) would stretch the timeline
PO_DATES = 75  # the last 75 order dates up to PO_LAST_DATE
PO_MAX_LINES = 5
PO_TARGET = 150
SO_WINDOW = ("2014-04-17", "2014-06-30")  # online orders: the last 75 order dates
SO_RESELLER_FROM = "2014-03-01"  # reseller orders come in monthly batches
SO_ONLINE = 110
SO_RESELLER = 40
SO_RESELLER_LINES = (2, 8)
INVENTORY_LOCATION = "7"  # Finished Goods Storage
INVENTORY_ROWS = 36

Row = dict[str, str]


def _read(src: Path, name: str) -> tuple[list[str], list[Row]]:
    with (src / name).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write(name: str, fields: list[str], rows: Iterable[Row]) -> int:
    rows = list(rows)
    with (HERE / name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def _spread(rows: list[Row], count: int) -> list[Row]:
    """`count` rows evenly spaced through `rows` (all of them when there are fewer)."""
    if len(rows) <= count:
        return rows
    step = len(rows) / count
    return [rows[int(i * step)] for i in range(count)]


def _purchase_orders(src: Path) -> tuple[list[Row], list[Row]]:
    _, headers = _read(src, "PurchaseOrderHeader.csv")
    _, details = _read(src, "PurchaseOrderDetail.csv")
    lines: dict[str, list[Row]] = defaultdict(list)
    for row in details:
        lines[row["PurchaseOrderID"]].append(row)
    dates = sorted({h["OrderDate"][:10] for h in headers if h["OrderDate"][:10] <= PO_LAST_DATE})
    first = dates[-PO_DATES]
    window = [
        h
        for h in headers
        if first <= h["OrderDate"][:10] <= PO_LAST_DATE
        and len(lines[h["PurchaseOrderID"]]) <= PO_MAX_LINES
    ]
    window.sort(key=lambda h: int(h["PurchaseOrderID"]))

    def short(h: Row) -> bool:
        return any(
            float(x["ReceivedQty"]) < float(x["OrderQty"]) for x in lines[h["PurchaseOrderID"]]
        )

    def rejects(h: Row) -> bool:
        return any(float(x["RejectedQty"]) > 0 for x in lines[h["PurchaseOrderID"]])

    special = [h for h in window if h["Status"] in ("2", "3")]
    shorts = [h for h in window if h not in special and short(h)][::3]
    rejected = [h for h in window if h not in special and not short(h) and rejects(h)][::5]
    taken = {h["PurchaseOrderID"] for h in special + shorts + rejected}
    rest = [h for h in window if h["PurchaseOrderID"] not in taken]
    chosen = special + shorts + rejected + _spread(rest, PO_TARGET - len(taken))
    chosen.sort(key=lambda h: int(h["PurchaseOrderID"]))
    ids = {h["PurchaseOrderID"] for h in chosen}
    return chosen, [d for d in details if d["PurchaseOrderID"] in ids]


def _sales_orders(src: Path) -> tuple[list[Row], list[Row]]:
    _, headers = _read(src, "SalesOrderHeader.csv")
    _, details = _read(src, "SalesOrderDetail.csv")
    lines: dict[str, int] = defaultdict(int)
    for row in details:
        lines[row["SalesOrderID"]] += 1
    headers.sort(key=lambda h: int(h["SalesOrderID"]))
    online = [
        h
        for h in headers
        if h["OnlineOrderFlag"] == "1" and SO_WINDOW[0] <= h["OrderDate"][:10] <= SO_WINDOW[1]
    ]
    low, high = SO_RESELLER_LINES
    reseller = [
        h
        for h in headers
        if h["OnlineOrderFlag"] == "0"
        and SO_RESELLER_FROM <= h["OrderDate"][:10] <= SO_WINDOW[1]
        and low <= lines[h["SalesOrderID"]] <= high
    ]
    chosen = _spread(online, SO_ONLINE) + _spread(reseller, SO_RESELLER)
    chosen.sort(key=lambda h: int(h["SalesOrderID"]))
    ids = {h["SalesOrderID"] for h in chosen}
    return chosen, [d for d in details if d["SalesOrderID"] in ids]


def main(source: str) -> None:
    src = Path(source)
    po_fields, _ = _read(src, "PurchaseOrderHeader.csv")
    pod_fields, _ = _read(src, "PurchaseOrderDetail.csv")
    so_fields, _ = _read(src, "SalesOrderHeader.csv")
    sod_fields, _ = _read(src, "SalesOrderDetail.csv")
    pos, po_lines = _purchase_orders(src)
    sos, so_lines = _sales_orders(src)
    inv_fields, inventory = _read(src, "ProductInventory.csv")
    stock = sorted(
        (r for r in inventory if r["LocationID"] == INVENTORY_LOCATION),
        key=lambda r: int(r["ProductID"]),
    )[:INVENTORY_ROWS]
    vendor_ids = {h["VendorID"] for h in pos}
    customer_ids = {h["CustomerID"] for h in sos}
    product_ids = (
        {d["ProductID"] for d in po_lines}
        | {d["ProductID"] for d in so_lines}
        | {r["ProductID"] for r in stock}
    )
    v_fields, vendors = _read(src, "Vendor.csv")
    c_fields, customers = _read(src, "Customer.csv")
    p_fields, products = _read(src, "Product.csv")
    m_fields, methods = _read(src, "ShipMethod.csv")
    counts = {
        "PurchaseOrderHeader.csv": _write("PurchaseOrderHeader.csv", po_fields, pos),
        "PurchaseOrderDetail.csv": _write("PurchaseOrderDetail.csv", pod_fields, po_lines),
        "SalesOrderHeader.csv": _write("SalesOrderHeader.csv", so_fields, sos),
        "SalesOrderDetail.csv": _write("SalesOrderDetail.csv", sod_fields, so_lines),
        "ProductInventory.csv": _write("ProductInventory.csv", inv_fields, stock),
        "Vendor.csv": _write(
            "Vendor.csv", v_fields, (v for v in vendors if v["BusinessEntityID"] in vendor_ids)
        ),
        "Customer.csv": _write(
            "Customer.csv", c_fields, (c for c in customers if c["CustomerID"] in customer_ids)
        ),
        "Product.csv": _write(
            "Product.csv", p_fields, (p for p in products if p["ProductID"] in product_ids)
        ),
        "ShipMethod.csv": _write("ShipMethod.csv", m_fields, methods),
    }
    for name, count in counts.items():
        print(f"{name}: {count} rows")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets/adventureworks")
