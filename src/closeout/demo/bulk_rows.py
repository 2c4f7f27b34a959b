"""Writing the rows of `gen-data` (closeout.demo.bulk): ids reserved from the table's sequence,
then the rows inserted with those ids, by COPY on PostgreSQL and batched multi-row inserts on
SQLite; the database values of the columns a generator does not set."""

from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import Field, Max, Model


def _columns(model: type[Model]) -> list[Field[Any, Any]]:
    # Generated columns (Line.on_hold_or_pending) are computed by the database.
    return [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]


def row_defaults(fields: list[Field[Any, Any]], given: set[str]) -> dict[str, Any]:
    """Database values for the columns a generator does not set (every field has a default)."""
    values: dict[str, Any] = {}
    for f in fields:
        if f.attname in given:
            continue
        default = f.get_default()
        if default is None and not f.null:
            raise RuntimeError(f"gen-data: {f.model.__name__}.{f.attname} needs a value")
        values[f.attname] = default
    return values


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


class RowWriter:
    """Inserts rows with explicit ids: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.table = model._meta.db_table
        self.fields = _columns(model)
        self.names = ["id", *(f.attname for f in self.fields)]
        self.postgres = connection.vendor == "postgresql"

    def reserve_ids(self, count: int) -> list[int]:
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [self.table, count],
                )
                return sorted(row[0] for row in cursor.fetchall())
            first = (self.model._default_manager.aggregate(m=Max("id"))["m"] or 0) + 1
            return list(range(first, first + count))

    def adapt(self, row: dict[str, Any]) -> list[Any]:
        return [row[name] for name in self.names]

    def write(self, rows: list[list[Any]]) -> None:
        if not rows:
            return
        cols = ", ".join(connection.ops.quote_name(n) for n in self.names)
        with connection.cursor() as cursor:
            if self.postgres:
                sql = f"COPY {connection.ops.quote_name(self.table)} ({cols}) FROM STDIN"
                with cursor.cursor.copy(sql) as copy:
                    copy.write(
                        "".join("\t".join(map(_copy_text, row)) + "\n" for row in rows).encode()
                    )
                return
            marks = ", ".join(["%s"] * len(self.names))
            table = connection.ops.quote_name(self.table)
            sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"  # noqa: S608 (identifiers)
            cursor.executemany(sql, rows)


def db_datetime(value: datetime) -> Any:
    return (
        value
        if connection.vendor == "postgresql"
        else connection.ops.adapt_datetimefield_value(value)
    )


def db_date(value: date | None) -> Any:
    return None if value is None else connection.ops.adapt_datefield_value(value)
