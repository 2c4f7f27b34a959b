"""Triggers that keep the audit chain append-only, on PostgreSQL and on SQLite:

- events: no UPDATE, no DELETE (PostgreSQL had this since 0002), and an INSERT must continue the
  chain: its sequence is the head's + 1 and its previous hash the head's hash. The trigger then
  moves the head to the new event itself. On PostgreSQL the check runs once per statement over
  the inserted rows (COPY and multi-row INSERT append thousands of events at once); SQLite
  checks each row.
- the head: no DELETE; an UPDATE only forwards to the last event, with that event's hash (or
  back to the genesis once the events table is empty: TRUNCATE, a separate privilege, used by
  test teardown and `closeout demo --reset`); an INSERT (after a TRUNCATE) only of the head the
  events table has.

SQLite drops a table's triggers when a migration rebuilds the table: a later migration that
alters an audit table there must create them again (tests/audit check they are installed).
"""

from django.db import migrations

GENESIS = "0" * 64

POSTGRES = [
    """
CREATE OR REPLACE FUNCTION audit_event_continues_chain() RETURNS trigger AS $$
DECLARE
    head_seq bigint;
    head_hash varchar(64);
    bad record;
    tail record;
BEGIN
    SELECT last_seq, last_hash INTO head_seq, head_hash
        FROM audit_auditchainhead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit event does not continue the audit chain: the chain head is missing';
    END IF;
    SELECT r.seq, r.want_seq INTO bad FROM (
        SELECT seq, prev_hash,
               coalesce(lag(seq) OVER w, head_seq) + 1 AS want_seq,
               coalesce(lag(hash) OVER w, head_hash) AS want_hash
        FROM added WINDOW w AS (ORDER BY seq)
    ) r
    WHERE r.seq <> r.want_seq OR r.prev_hash <> r.want_hash
    ORDER BY r.seq LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'audit event #% does not continue the audit chain (#% with the previous '
            'hash expected): INSERT refused', bad.seq, bad.want_seq;
    END IF;
    SELECT seq, hash INTO tail FROM added ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        UPDATE audit_auditchainhead SET last_seq = tail.seq, last_hash = tail.hash WHERE id = 1;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
""",
    """
CREATE TRIGGER audit_event_continues_chain
    AFTER INSERT ON audit_auditevent REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_continues_chain()
""",
    f"""
CREATE OR REPLACE FUNCTION audit_head_moves_forward() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit chain head is append-only: DELETE refused';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.id = 1 AND (
            (NEW.last_seq = 0 AND NEW.last_hash = '{GENESIS}'
             AND NOT EXISTS (SELECT 1 FROM audit_auditevent))
            OR (EXISTS (SELECT 1 FROM audit_auditevent
                        WHERE seq = NEW.last_seq AND hash = NEW.last_hash)
                AND NOT EXISTS (SELECT 1 FROM audit_auditevent WHERE seq > NEW.last_seq))
        ) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'the audit chain head is append-only: a head that is not the last '
            'event (#%) refused', NEW.last_seq;
    END IF;
    IF NEW.id = OLD.id AND NEW.last_seq = OLD.last_seq AND NEW.last_hash = OLD.last_hash THEN
        RETURN NEW;
    END IF;
    IF NEW.id = OLD.id AND NEW.last_seq = 0 AND NEW.last_hash = '{GENESIS}'
            AND NOT EXISTS (SELECT 1 FROM audit_auditevent) THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.last_seq <= OLD.last_seq
            OR NOT EXISTS (SELECT 1 FROM audit_auditevent
                           WHERE seq = NEW.last_seq AND hash = NEW.last_hash)
            OR EXISTS (SELECT 1 FROM audit_auditevent WHERE seq > NEW.last_seq) THEN
        RAISE EXCEPTION 'the audit chain head is append-only: it only moves forward to the last '
            'event (#% to #% refused)', OLD.last_seq, NEW.last_seq;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
""",
    """
CREATE TRIGGER audit_head_moves_forward
    BEFORE INSERT OR UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION audit_head_moves_forward()
""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS audit_head_moves_forward ON audit_auditchainhead",
    "DROP FUNCTION IF EXISTS audit_head_moves_forward()",
    "DROP TRIGGER IF EXISTS audit_event_continues_chain ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_event_continues_chain()",
]

SQLITE = [
    """
CREATE TRIGGER audit_event_append_only_update BEFORE UPDATE ON audit_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END
""",
    """
CREATE TRIGGER audit_event_append_only_delete BEFORE DELETE ON audit_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END
""",
    """
CREATE TRIGGER audit_event_continues_chain BEFORE INSERT ON audit_auditevent
WHEN NOT EXISTS (
    SELECT 1 FROM audit_auditchainhead
    WHERE id = 1 AND last_seq + 1 = NEW.seq AND last_hash = NEW.prev_hash
)
BEGIN SELECT RAISE(ABORT, 'audit event does not continue the audit chain: INSERT refused'); END
""",
    """
CREATE TRIGGER audit_event_advances_head AFTER INSERT ON audit_auditevent
BEGIN
    UPDATE audit_auditchainhead SET last_seq = NEW.seq, last_hash = NEW.hash WHERE id = 1;
END
""",
    f"""
CREATE TRIGGER audit_head_is_the_tail BEFORE INSERT ON audit_auditchainhead
WHEN NOT (NEW.id = 1 AND (
    (NEW.last_seq = 0 AND NEW.last_hash = '{GENESIS}'
     AND NOT EXISTS (SELECT 1 FROM audit_auditevent))
    OR (EXISTS (SELECT 1 FROM audit_auditevent WHERE seq = NEW.last_seq AND hash = NEW.last_hash)
        AND NOT EXISTS (SELECT 1 FROM audit_auditevent WHERE seq > NEW.last_seq))
))
BEGIN SELECT RAISE(ABORT, 'the audit chain head is append-only: a head that is not the last event refused'); END
""",
    """
CREATE TRIGGER audit_head_append_only_delete BEFORE DELETE ON audit_auditchainhead
BEGIN SELECT RAISE(ABORT, 'the audit chain head is append-only: DELETE refused'); END
""",
    f"""
CREATE TRIGGER audit_head_moves_forward BEFORE UPDATE ON audit_auditchainhead
WHEN NOT (
    (NEW.id = OLD.id AND NEW.last_seq = OLD.last_seq AND NEW.last_hash = OLD.last_hash)
    OR (NEW.id = OLD.id AND NEW.last_seq = 0 AND NEW.last_hash = '{GENESIS}'
        AND NOT EXISTS (SELECT 1 FROM audit_auditevent))
    OR (NEW.id = OLD.id AND NEW.last_seq > OLD.last_seq
        AND EXISTS (SELECT 1 FROM audit_auditevent
                    WHERE seq = NEW.last_seq AND hash = NEW.last_hash)
        AND NOT EXISTS (SELECT 1 FROM audit_auditevent WHERE seq > NEW.last_seq))
)
BEGIN
    SELECT RAISE(ABORT, 'the audit chain head is append-only: it only moves forward to the last event');
END
""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "audit_head_moves_forward",
        "audit_head_append_only_delete",
        "audit_head_is_the_tail",
        "audit_event_advances_head",
        "audit_event_continues_chain",
        "audit_event_append_only_delete",
        "audit_event_append_only_update",
    )
]


def add_guards(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": POSTGRES, "sqlite": SQLITE}.get(vendor, []):
        schema_editor.execute(statement, params=None)


def drop_guards(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP}.get(vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_keyed_chain_and_http_request_id")]
    operations = [migrations.RunPython(add_guards, drop_guards)]
