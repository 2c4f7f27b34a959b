"""Forging the audit chain as the database superuser, with raw SQL, on SQLite and PostgreSQL.

Each forgery that verified as intact before the chain was keyed and checkpointed (a row appended
with a correct plain SHA-256 hash and the head advanced; the tail deleted and the head rewound;
an edit with every later hash and the head recomputed), and the ones already caught (edit,
delete, insert, reorder), is detected by `audit_chain_verify` and by `closeout audit verify`
(exit 2), naming the first bad sequence. The triggers refuse what they can without a superuser.
"""

import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper

from closeout.audit.keys import audit_key_ring
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent
from closeout.audit.services import (
    GENESIS_HASH,
    AuditEntry,
    audit_append,
    audit_chain_verify,
    audit_checkpoint_write,
    canonical_payload,
    sqlite_audit_guards_lifted,
)

pytestmark = pytest.mark.django_db

LENGTH = 40


# --- the forger's tools -----------------------------------------------------------------------


@contextmanager
def superuser() -> Iterator[CursorWrapper]:
    """A raw cursor with the audit triggers out of the way, as the database superuser can:
    PostgreSQL `session_replication_role = replica` (no ordinary trigger fires), SQLite
    DROP TRIGGER (created again afterwards)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            try:
                yield cursor
            finally:
                cursor.execute("SET session_replication_role = DEFAULT")
        else:
            with sqlite_audit_guards_lifted():
                yield cursor


def _columns() -> list[Any]:
    return [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]


def raw_insert(cursor: CursorWrapper, event: AuditEvent) -> None:
    fields = _columns()
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    marks = ", ".join(["%s"] * len(fields))
    cursor.execute(f"INSERT INTO audit_auditevent ({names}) VALUES ({marks})", values)  # noqa: S608


def raw_update(cursor: CursorWrapper, event: AuditEvent, *names: str) -> None:
    fields = [f for f in _columns() if f.attname in names]
    sets = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    cursor.execute(f"UPDATE audit_auditevent SET {sets} WHERE seq = %s", [*values, event.seq])  # noqa: S608


def raw_head(cursor: CursorWrapper, seq: int, hash_: str) -> None:
    cursor.execute(
        "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE id = 1", [seq, hash_]
    )


def sha256_of(event: AuditEvent) -> str:
    """What a forger without the key can compute: plain SHA-256 over the canonical payload."""
    payload = canonical_payload(event)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def hmac_of(event: AuditEvent) -> str:
    """What a forger who stole the key can compute."""
    ring = audit_key_ring()
    text = json.dumps(canonical_payload(event), sort_keys=True, separators=(",", ":"))
    return hmac.new(ring.secret(event.key_id), text.encode(), hashlib.sha256).hexdigest()


def event(seq: int) -> AuditEvent:
    return AuditEvent.objects.get(seq=seq)


def next_event(last: AuditEvent, *, key_id: str = "") -> AuditEvent:
    forged = AuditEvent(
        seq=last.seq + 1,
        at=last.at,
        actor_id=None,
        actor_name="system",
        action=int(AuditAction.DOCUMENT_REOPENED),
        object_type="document",
        object_id=last.object_id,
        data={"forged": True},
        key_id=key_id,
        prev_hash=last.hash,
    )
    forged.hash = sha256_of(forged)
    return forged


def rewrite_from(cursor: CursorWrapper, seq: int, *, key_id: str | None, seal: Any) -> None:
    """Edit event `seq`, then recompute its hash, every later link and hash, and the head."""
    prev_hash = event(seq - 1).hash if seq > 1 else GENESIS_HASH
    last = None
    for current in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        if current.seq == seq:
            current.reason = "nothing happened"
        if key_id is not None:
            current.key_id = key_id
        current.prev_hash = prev_hash
        current.hash = seal(current)
        raw_update(cursor, current, "reason", "key_id", "prev_hash", "hash")
        prev_hash, last = current.hash, current
    assert last is not None
    raw_head(cursor, last.seq, last.hash)


# --- checking ---------------------------------------------------------------------------------


def assert_detected(first_bad_seq: int, *words: str) -> str:
    """Both the service and `closeout audit verify` (exit 2) name the first bad sequence."""
    verdict = audit_chain_verify()
    assert not verdict.intact
    assert verdict.first_bad_seq == first_bad_seq, verdict.problem
    for word in words:
        assert word in verdict.problem, verdict.problem
    with pytest.raises(CommandError) as raised:
        call_command("audit", "verify", stdout=io.StringIO())
    assert raised.value.returncode == 2
    assert f"audit chain broken at event #{first_bad_seq}" in str(raised.value)
    return verdict.problem


@pytest.fixture
def chain() -> int:
    """A chain of LENGTH events, appended in a few transactions, one of them in one go."""
    with transaction.atomic():
        audit_append(
            actor=None,
            entries=[AuditEntry(AuditAction.DOCUMENT_CREATED, "document", i) for i in range(30)],
        )
    for i in range(LENGTH - 30):
        with transaction.atomic():
            audit_append(
                actor=None,
                entries=[
                    AuditEntry(
                        AuditAction.DOCUMENT_CLOSED, "document", i, data={"n": i}, reason="x"
                    )
                ],
            )
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.checked) == (True, LENGTH), verdict.problem
    return LENGTH


# --- (a) a row appended with a correct plain SHA-256 hash and the head advanced ---------------


def test_appended_row_with_plain_sha256_needs_no_superuser_and_is_detected(chain: int) -> None:
    forged = next_event(event(chain))
    with connection.cursor() as cursor:  # the application's own rights: the trigger lets a
        raw_insert(cursor, forged)  # row through that continues the chain, and moves the head
    head = AuditChainHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (chain + 1, forged.hash)
    assert_detected(chain + 1, "plain SHA-256", "behind the application")


def test_appended_row_with_advanced_head_as_superuser_is_detected(chain: int) -> None:
    forged = next_event(event(chain))
    with superuser() as cursor:
        raw_insert(cursor, forged)
        raw_head(cursor, forged.seq, forged.hash)
    assert_detected(chain + 1, "plain SHA-256")


def test_appended_row_claiming_the_key_but_hashed_without_it_is_detected(chain: int) -> None:
    forged = next_event(event(chain), key_id=audit_key_ring().current)
    with superuser() as cursor:
        raw_insert(cursor, forged)
        raw_head(cursor, forged.seq, forged.hash)
    assert_detected(chain + 1, "modified")


def test_appended_row_sealed_with_an_unknown_key_is_detected(chain: int) -> None:
    forged = next_event(event(chain), key_id="mine")
    with superuser() as cursor:
        raw_insert(cursor, forged)
        raw_head(cursor, forged.seq, forged.hash)
    assert_detected(chain + 1, "'mine'", "not in the key ring")


# --- (b) the tail deleted and the head rewound ------------------------------------------------


def test_deleted_tail_with_rewound_head_is_detected_by_the_checkpoint(chain: int) -> None:
    audit_checkpoint_write()
    keep = chain - 7
    with superuser() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > %s", [keep])
        raw_head(cursor, keep, event(keep).hash)
    problem = assert_detected(keep + 1, "truncation", f"#{keep + 1}..#{chain}")
    assert "checkpoint" in problem
    assert audit_chain_verify().bad_range == (keep + 1, chain)


def test_truncation_since_the_last_of_several_checkpoints_is_detected(chain: int) -> None:
    audit_checkpoint_write()  # at `chain`
    with transaction.atomic():
        audit_append(
            actor=None,
            entries=[AuditEntry(AuditAction.SWEEP_RUN, "sweep", i) for i in range(5)],
        )
    audit_checkpoint_write()  # at chain + 5
    keep = chain + 2  # after the first checkpoint, before the last
    with superuser() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > %s", [keep])
        raw_head(cursor, keep, event(keep).hash)
    assert_detected(keep + 1, f"#{keep + 1}..#{chain + 5}")


def test_without_a_checkpoint_since_then_a_cut_tail_cannot_be_told(chain: int) -> None:
    """Why checkpoints are written after every batch and every hour: events appended after the
    last one can be cut off unseen."""
    audit_checkpoint_write()
    with transaction.atomic():
        audit_append(actor=None, entries=[AuditEntry(AuditAction.SWEEP_RUN, "sweep", 1)])
    with superuser() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > %s", [chain])
        raw_head(cursor, chain, event(chain).hash)
    assert audit_chain_verify().intact


# --- (c) an edit with every later hash and the head recomputed --------------------------------


@pytest.mark.parametrize("key_id", ["keep the key id", "plain SHA-256 key id"])
def test_edit_with_later_hashes_recomputed_without_the_key_is_detected(
    chain: int, key_id: str
) -> None:
    seq = chain // 2
    with superuser() as cursor:
        rewrite_from(
            cursor, seq, key_id=None if key_id == "keep the key id" else "", seal=sha256_of
        )
    words = ("modified",) if key_id == "keep the key id" else ("plain SHA-256",)
    assert_detected(seq, *words)


def test_whole_chain_rewritten_with_plain_sha256_is_detected_by_the_checkpoint(chain: int) -> None:
    audit_checkpoint_write()
    with superuser() as cursor:
        rewrite_from(cursor, 1, key_id="", seal=sha256_of)
    assert_detected(1, "plain SHA-256", "checkpoint")


def test_rewrite_with_the_stolen_key_is_detected_by_the_checkpoint(chain: int) -> None:
    audit_checkpoint_write()  # at `chain`
    with transaction.atomic():
        audit_append(actor=None, entries=[AuditEntry(AuditAction.SWEEP_RUN, "sweep", 1)])
    audit_checkpoint_write()  # at chain + 1
    seq = chain // 2
    with superuser() as cursor:
        rewrite_from(cursor, seq, key_id=None, seal=hmac_of)
    # Every MAC holds: only the first checkpoint after the edit knows another hash.
    problem = assert_detected(1, "rewritten", f"#1..#{chain}")
    assert "not the event the checkpoint" in problem


def test_rewrite_after_a_checkpoint_with_the_stolen_key_names_the_range_since_it(
    chain: int,
) -> None:
    with transaction.atomic():
        audit_append(actor=None, entries=[AuditEntry(AuditAction.SWEEP_RUN, "sweep", 1)])
    early = chain + 1
    audit_checkpoint_write()
    with transaction.atomic():
        audit_append(
            actor=None, entries=[AuditEntry(AuditAction.SWEEP_RUN, "sweep", i) for i in range(4)]
        )
    audit_checkpoint_write()
    with superuser() as cursor:
        rewrite_from(cursor, early + 2, key_id=None, seal=hmac_of)
    assert_detected(early + 1, f"#{early + 1}..#{early + 4}")


# --- (d) the forgeries detected before keys and checkpoints -----------------------------------


def test_edit_is_detected(chain: int) -> None:
    seq = chain // 2
    with superuser() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'edited' WHERE seq = %s", [seq])
    assert_detected(seq, "modified")


def test_delete_is_detected(chain: int) -> None:
    seq = chain // 2
    with superuser() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [seq])
    assert_detected(seq + 1, f"where #{seq} was expected")


def test_insert_in_the_middle_is_detected(chain: int) -> None:
    seq = chain // 2
    with superuser() as cursor:
        # Make room after `seq` (renumber the later events), then put a row there.
        cursor.execute("UPDATE audit_auditevent SET seq = seq + 1000 WHERE seq > %s", [seq])
        cursor.execute("UPDATE audit_auditevent SET seq = seq - 999 WHERE seq > 1000")
        raw_insert(cursor, next_event(event(seq)))
    assert_detected(seq + 2, f"where #{seq + 1} was expected")


def test_reorder_is_detected(chain: int) -> None:
    seq = chain // 2
    with superuser() as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = -1 WHERE seq = %s", [seq])
        cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [seq, seq + 1])
        cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = -1", [seq + 1])
    assert_detected(seq + 1, f"#{seq} was expected")


def test_edited_request_id_is_detected(chain: int) -> None:
    seq = chain // 2
    with superuser() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET http_request_id = 'someone-else' WHERE seq = %s", [seq]
        )
    assert_detected(seq, "modified")


def test_altered_checkpoint_file_is_detected(chain: int) -> None:
    written = audit_checkpoint_write()
    text = written.path.read_text()
    written.path.write_text(text.replace(f'"seq": {chain}', f'"seq": {chain + 5}'))
    verdict = audit_chain_verify()
    assert not verdict.intact and verdict.first_bad_seq == chain + 5
    assert "altered" in verdict.problem and verdict.checkpoints == 0
    with pytest.raises(CommandError) as raised:
        call_command("audit", "verify", stdout=io.StringIO())
    assert raised.value.returncode == 2 and "altered" in str(raised.value)


# --- what the triggers refuse without a superuser ---------------------------------------------


def _refused(sql: str, params: list[Any], words: str) -> None:
    with (
        pytest.raises(DatabaseError, match=words),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def test_insert_that_does_not_continue_the_chain_is_refused(chain: int) -> None:
    last = event(chain)
    for forged in (
        next_event(event(chain - 1)),  # a sequence taken
        AuditEvent(**{**_fields(next_event(last)), "seq": chain + 2}),  # a gap
        AuditEvent(**{**_fields(next_event(last)), "prev_hash": "f" * 64}),  # a broken link
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            raw_insert(cursor, forged)
    head = AuditChainHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (chain, last.hash)
    assert audit_chain_verify().intact


def test_broken_link_insert_names_the_chain(chain: int) -> None:
    forged = AuditEvent(**{**_fields(next_event(event(chain))), "prev_hash": "f" * 64})
    with (
        pytest.raises(DatabaseError, match="does not continue the audit chain"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        raw_insert(cursor, forged)


def _fields(e: AuditEvent) -> dict[str, Any]:
    return {f.attname: getattr(e, f.attname) for f in _columns()}


def test_head_cannot_be_deleted_rewound_or_moved_off_the_chain(chain: int) -> None:
    _refused("DELETE FROM audit_auditchainhead", [], "append-only")
    _refused(
        "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE id = 1",
        [chain - 3, event(chain - 3).hash],
        "append-only",
    )
    _refused(
        "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE id = 1",
        [chain + 1, "a" * 64],
        "append-only",
    )
    _refused(
        "UPDATE audit_auditchainhead SET last_hash = %s WHERE id = 1", ["b" * 64], "append-only"
    )
    _refused(
        "UPDATE audit_auditchainhead SET last_seq = 0, last_hash = %s WHERE id = 1",
        [GENESIS_HASH],
        "append-only",
    )
    assert audit_chain_verify().intact


def test_head_put_back_after_a_truncate_must_be_the_tail(chain: int) -> None:
    """TRUNCATE (or a superuser's DELETE) of the head, then a rewound head inserted: refused."""
    with superuser() as cursor:
        cursor.execute("DELETE FROM audit_auditchainhead")
    insert = "INSERT INTO audit_auditchainhead (id, last_seq, last_hash) VALUES (%s, %s, %s)"
    _refused(insert, [1, chain - 5, event(chain - 5).hash], "append-only")
    _refused(insert, [1, 0, GENESIS_HASH], "append-only")
    _refused(insert, [2, chain, event(chain).hash], "append-only")
    with connection.cursor() as cursor:
        cursor.execute(insert, [1, chain, event(chain).hash])
    assert audit_chain_verify().intact


def test_events_cannot_be_updated_or_deleted(chain: int) -> None:
    _refused("UPDATE audit_auditevent SET reason = 'x' WHERE seq = %s", [3], "append-only")
    _refused("DELETE FROM audit_auditevent WHERE seq = %s", [chain], "append-only")
    _refused("DELETE FROM audit_auditevent", [], "append-only")


EXPECTED_TRIGGERS = {
    "postgresql": {
        ("audit_auditevent", "audit_event_append_only"),
        ("audit_auditevent", "audit_event_continues_chain"),
        ("audit_auditchainhead", "audit_head_moves_forward"),
    },
    "sqlite": {
        ("audit_auditevent", "audit_event_append_only_update"),
        ("audit_auditevent", "audit_event_append_only_delete"),
        ("audit_auditevent", "audit_event_continues_chain"),
        ("audit_auditevent", "audit_event_advances_head"),
        ("audit_auditchainhead", "audit_head_append_only_delete"),
        ("audit_auditchainhead", "audit_head_is_the_tail"),
        ("audit_auditchainhead", "audit_head_moves_forward"),
    },
}


def test_the_guards_are_installed() -> None:
    """SQLite drops a table's triggers when a migration rebuilds it: this notices."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relname LIKE 'audit_%%' AND t.tgenabled = 'O'"
            )
        else:
            cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        found = set(cursor.fetchall())
    assert EXPECTED_TRIGGERS[connection.vendor] <= found


def test_many_events_in_one_statement_continue_the_chain(chain: int) -> None:
    """The sweep appends thousands of events at once (COPY on PostgreSQL): one statement, the
    continuity checked over all its rows, the head moved once."""
    with transaction.atomic():
        events = audit_append(
            actor=None,
            entries=[AuditEntry(AuditAction.DOCUMENT_ARCHIVED, "document", i) for i in range(1200)],
        )
    head = AuditChainHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (chain + 1200, events[-1].hash)
    assert audit_chain_verify().checked == chain + 1200
