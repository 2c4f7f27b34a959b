"""Number search anywhere in the number (issue 17, item 6): on PostgreSQL, a trigram index on
UPPER(number), the expression Django's `icontains` compares. pg_trgm ships with PostgreSQL's
contrib; where the extension cannot be created (no right to), the search still works, by a
scan, and the migration says so."""

from django.db import DatabaseError, migrations, transaction

INDEX = "document_number_trgm_idx"


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        print(f"\n  number search: pg_trgm not available ({exc}); searching without an index")
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON documents_document "
        "USING gin (UPPER(number::text) gin_trgm_ops)"
    )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("documents", "0008_company_document_number")]

    operations = [migrations.RunPython(create, drop)]
