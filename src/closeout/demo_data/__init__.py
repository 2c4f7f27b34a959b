"""A small subset of Microsoft's AdventureWorks sample data (MIT License, Copyright (c)
Microsoft Corporation), shipped as package data for `closeout demo` and for import examples.

README.md in this folder says which rows were taken; `extract.py` rebuilds them.
"""

import csv
import io
from importlib.resources import files

from django.utils.translation import gettext_noop

from closeout.core.errors import NotFound

TABLES = (
    "PurchaseOrderHeader",
    "PurchaseOrderDetail",
    "Vendor",
    "Product",
    "ProductInventory",
    "SalesOrderHeader",
    "SalesOrderDetail",
    "Customer",
    "ShipMethod",
)


def table_text(name: str) -> str:
    """The CSV text of one table (UTF-8, comma-separated, header row first)."""
    if name not in TABLES:
        raise NotFound(
            gettext_noop(
                "no AdventureWorks table '%(name)s' in the demo subset; use one of: %(tables)s"
            ),
            params={"name": name, "tables": ", ".join(TABLES)},
        )
    return files(__name__).joinpath(f"{name}.csv").read_text(encoding="utf-8")


def table_rows(name: str) -> list[dict[str, str]]:
    """The rows of one table as dicts keyed by the source column names (NULL is "")."""
    return list(csv.DictReader(io.StringIO(table_text(name))))
