"""Create the chain head row and, on PostgreSQL, a trigger that refuses UPDATE and DELETE on
audit events (TRUNCATE, used only by test teardown and `closeout demo --reset`, is a separate
privilege)."""

from django.db import migrations

TRIGGER = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on event %', TG_OP, OLD.seq;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_append_only();
"""


def create_head(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("audit", "AuditChainHead").objects.get_or_create(pk=1)


def add_trigger(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


def drop_trigger(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(add_trigger, drop_trigger),
    ]
