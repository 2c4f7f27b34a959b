"""Many new rows of one model written at once: by COPY on PostgreSQL (ids reserved from the
table's sequence first, in order, and set on the objects), by `bulk_create` elsewhere or for a
few rows. COPY skips Django's per-field, per-row statement building, which is most of the
cost of `bulk_create` for thousands of rows (bulk ERP sync: lines and events)."""

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from django.db import connection
from django.db.models import Field, Model

# Below this many rows bulk_create is as quick, and keeps SQLite's path the tested one.
COPY_FROM = 200

_PLAIN = (int, str, Decimal, date, datetime, bool, type(None))


def _stored(field: "Field[Any, Any]", obj: Model) -> Any:
    """The value COPY writes: plain values as they are, others as Django prepares them."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        value = field.pre_save(obj, add=True)
    else:
        value = getattr(obj, field.attname)
    if field.get_internal_type() == "JSONField":
        return field.get_db_prep_save(value, connection)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, _PLAIN):
        return value
    return field.get_db_prep_save(value, connection)


def rows_insert(objects: Sequence[Model], *, batch_size: int = 1000) -> None:
    """Insert `objects` (new instances of one model, no primary key yet) and set their ids.
    Raises django.db.IntegrityError on a constraint violation, as `bulk_create` does."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql" or len(objects) < COPY_FROM:
        model._default_manager.bulk_create(objects, batch_size=batch_size)
        return
    meta = model._meta
    fields = [
        f for f in meta.concrete_fields if not f.primary_key and not getattr(f, "generated", False)
    ]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(str(c)) for c in ["id", *(f.column for f in fields)])
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [meta.db_table, len(objects)],
        )
        for obj, (pk,) in zip(objects, sorted(cursor.fetchall()), strict=True):
            obj.pk = pk
        with cursor.cursor.copy(f"COPY {qn(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj in objects:
                copy.write_row([obj.pk, *(_stored(f, obj) for f in fields)])
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias
