"""The audit key ring (key file created on first use, environment keys, rotation), events written
before keys (plain SHA-256) still verifying, checkpoints of the head outside the database (file,
webhook, e-mail, after each batch, on the beat schedule), and the HTTP request id on events."""

import csv
import hashlib
import io
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction
from django.test import Client

from closeout.api.services import api_token_create
from closeout.audit.keys import audit_key_ring
from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent
from closeout.audit.services import (
    GENESIS_HASH,
    AuditEntry,
    audit_append,
    audit_chain_restart,
    audit_chain_verify,
    audit_checkpoint_write,
    audit_checkpoints_read,
    audit_record,
    canonical_payload,
    event_hash,
)
from closeout.audit.tasks import audit_checkpoint_task
from closeout.core.request_id import current_request_id
from closeout.reports.archive_pack import audit_event_json
from closeout.reports.archive_verify import event_from_json
from tests.api.conftest import Api
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db

SECRET_A = "a" * 40
SECRET_B = "b" * 40


def append(n: int, action: AuditAction = AuditAction.DOCUMENT_CREATED) -> list[AuditEvent]:
    with transaction.atomic():
        return audit_append(
            actor=None, entries=[AuditEntry(action, "document", i) for i in range(n)]
        )


@pytest.fixture
def key_file(tmp_path: Path, settings: Any) -> Path:
    """A key file of this test's own (the run's shared one must not be rotated)."""
    settings.CLOSEOUT_AUDIT_KEY = ""
    settings.CLOSEOUT_AUDIT_KEY_FILE = tmp_path / "var" / "audit-keys.json"
    return Path(settings.CLOSEOUT_AUDIT_KEY_FILE)


# --- keys -------------------------------------------------------------------------------------


def test_key_file_is_created_on_first_use_readable_by_the_owner_only(key_file: Path) -> None:
    assert not key_file.exists()
    events = append(2)
    content = json.loads(key_file.read_text())
    assert content["current"] == "k1" and len(content["keys"]["k1"]) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert {e.key_id for e in events} == {"k1"}
    assert not key_file.parent.joinpath(".audit-keys.json").exists()
    # The MAC is HMAC-SHA-256, not a hash anyone can recompute.
    plain = hashlib.sha256(
        json.dumps(canonical_payload(events[0]), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert events[0].hash != plain and events[0].hash == event_hash(events[0])
    assert audit_chain_verify().intact


def test_keys_from_the_environment(settings: Any) -> None:
    settings.CLOSEOUT_AUDIT_KEY = f"2026b:{SECRET_B}, 2026a:{SECRET_A}"
    ring = audit_key_ring()
    assert (ring.current, ring.ids(), ring.source) == ("2026b", ["2026a", "2026b"], "environment")
    assert {e.key_id for e in append(3)} == {"2026b"}
    assert audit_chain_verify().intact
    settings.CLOSEOUT_AUDIT_KEY = SECRET_A
    assert audit_key_ring().current == "env"
    with pytest.raises(CommandError, match="CLOSEOUT_AUDIT_KEY"):
        call_command("audit", "rotate-key", stdout=io.StringIO())
    for weak in ("short", f"bad id!:{SECRET_A}", f"x:{SECRET_A},x:{SECRET_B}"):
        settings.CLOSEOUT_AUDIT_KEY = weak
        with pytest.raises(ImproperlyConfigured):
            audit_key_ring()


def test_rotation_keeps_old_events_verifying(key_file: Path) -> None:
    before = append(3)
    out = io.StringIO()
    call_command("audit", "rotate-key", stdout=out)
    assert "audit key k2 added" in out.getvalue() and "k1" in out.getvalue()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    after = append(3)
    assert {e.key_id for e in before} == {"k1"} and {e.key_id for e in after} == {"k2"}
    assert audit_chain_verify().intact
    out = io.StringIO()
    call_command("audit", "keys", stdout=out)
    assert "k1\n" in out.getvalue() and "k2  (current)" in out.getvalue()
    assert SECRET_A not in out.getvalue()
    with pytest.raises(CommandError, match="exists already"):
        call_command("audit", "rotate-key", "--key-id", "k1", stdout=io.StringIO())
    # A key removed from the ring: what it sealed can no longer be verified.
    content = json.loads(key_file.read_text())
    del content["keys"]["k1"]
    key_file.write_text(json.dumps(content))
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.first_bad_seq) == (False, 1)
    assert "'k1'" in verdict.problem


def test_another_key_under_the_same_id_does_not_verify(key_file: Path) -> None:
    append(3)
    content = json.loads(key_file.read_text())
    content["keys"]["k1"] = "c" * 64
    key_file.write_text(json.dumps(content))
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.first_bad_seq) == (False, 1)
    assert "modified" in verdict.problem


# --- events written before keys ---------------------------------------------------------------


def legacy_chain(n: int) -> list[AuditEvent]:
    """Events as the code before keys wrote them: no key id, no request id, plain SHA-256."""
    head = AuditChainHead.objects.get(pk=1)
    prev, events = head.last_hash, []
    with transaction.atomic():
        for i in range(n):
            event = AuditEvent(
                seq=head.last_seq + i + 1,
                at=AuditEvent._meta.get_field("at").to_python("2026-01-02T03:04:05.123456Z"),
                actor_name="system",
                action=int(AuditAction.DOCUMENT_CLOSED),
                object_type="document",
                object_id=str(i),
                data={"n": i},
                prev_hash=prev,
            )
            payload = canonical_payload(event)
            assert "key_id" not in payload and "http_request_id" not in payload
            text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            event.hash = prev = hashlib.sha256(text.encode()).hexdigest()
            events.append(event)
        AuditEvent.objects.bulk_create(events)
        AuditChainHead.objects.filter(pk=1).update(last_seq=events[-1].seq, last_hash=prev)
    return events


def test_events_before_keys_still_verify_and_the_checkpoint_marks_their_end() -> None:
    legacy = legacy_chain(5)
    assert audit_chain_verify().intact
    keyed = append(3)
    assert keyed[0].prev_hash == legacy[-1].hash
    verdict = audit_chain_verify()
    assert (verdict.intact, verdict.checked) == (True, 8), verdict.problem
    first = audit_checkpoint_write().checkpoint
    assert (first.seq, first.legacy_until) == (8, 5)
    append(2)
    assert audit_checkpoint_write().checkpoint.legacy_until == 5
    assert audit_chain_verify().checkpoints == 2
    # Evidence packs carry both kinds, and recompute both with the chain's own function.
    for event in AuditEvent.objects.order_by("seq"):
        line = json.loads(json.dumps(audit_event_json(event)))
        assert ("key_id" in line) == bool(event.key_id)
        assert event_hash(event_from_json(line)) == event.hash


def test_checkpoint_of_a_chain_before_keys_bounds_nothing() -> None:
    legacy_chain(3)
    assert audit_checkpoint_write().checkpoint.legacy_until == 3
    append(2)
    assert audit_chain_verify().intact


# --- checkpoints ------------------------------------------------------------------------------


def test_checkpoint_line_is_sealed_and_appended() -> None:
    append(4)
    path = Path(settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE)
    result = audit_checkpoint_write()
    head = AuditChainHead.objects.get(pk=1)
    line = json.loads(path.read_text())
    assert line == {
        "seq": head.last_seq,
        "hash": head.last_hash,
        "at": result.checkpoint.at,
        "legacy_until": 0,
        "key_id": "k1",
        "mac": result.checkpoint.mac,
    }
    assert len(line["mac"]) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o640
    # A line cut short by a crash does not swallow the next one.
    with path.open("a") as out:
        out.write('{"seq": 4, "ha')
    audit_checkpoint_write()
    read = audit_checkpoints_read()
    assert [c.seq for c in read.checkpoints] == [4, 4]
    assert len(read.problems) == 1 and "not a checkpoint" in read.problems[0][1].en
    verdict = audit_chain_verify()
    assert not verdict.intact and "not a checkpoint" in verdict.problem


def test_checkpoint_command_and_verify_against_another_copy(tmp_path: Path) -> None:
    append(3)
    out = io.StringIO()
    call_command("audit", "checkpoint", stdout=out)
    assert "audit checkpoint #3" in out.getvalue()
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "intact: 3 events" in out.getvalue() and "1 checkpoints agree" in out.getvalue()
    # A copy kept elsewhere (the webhook's, the mailbox's) still knows #3 after the local file
    # was emptied and the tail cut.
    copy = tmp_path / "copy.jsonl"
    copy.write_text(Path(settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE).read_text())
    Path(settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE).write_text("")
    from tests.audit.test_forgery import raw_head, superuser

    with superuser() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > 1")
        raw_head(cursor, 1, AuditEvent.objects.get(seq=1).hash)
    assert audit_chain_verify().intact  # the emptied local file knows nothing
    with pytest.raises(CommandError, match=r"broken at event #2, events #2\.\.#3") as raised:
        call_command("audit", "verify", "--checkpoints", str(copy), stdout=io.StringIO())
    assert raised.value.returncode == 2


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"body": json.loads(body), "type": self.headers["Content-Type"]})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/checkpoints"
    server.shutdown()
    server.server_close()


def test_checkpoint_is_also_posted_and_mailed(
    receiver: str, settings: Any, mailoutbox: list[Any]
) -> None:
    append(2)
    settings.CLOSEOUT_AUDIT_CHECKPOINT_URL = receiver
    settings.CLOSEOUT_AUDIT_CHECKPOINT_EMAIL = ["audit@example.com", "ciso@example.com"]
    result = audit_checkpoint_write()
    assert not result.failed and len(result.sent) == 2
    [posted] = _Receiver.received
    assert posted["type"] == "application/json"
    assert posted["body"]["seq"] == 2 and posted["body"]["mac"] == result.checkpoint.mac
    [mail] = mailoutbox
    assert mail.to == ["audit@example.com", "ciso@example.com"]
    assert mail.subject == "closeout audit checkpoint #2"
    assert json.loads(mail.body)["hash"] == result.checkpoint.hash


def test_undeliverable_checkpoint_is_still_written(settings: Any) -> None:
    append(1)
    settings.CLOSEOUT_AUDIT_CHECKPOINT_URL = "http://127.0.0.1:9/"  # nothing listens there
    with pytest.raises(CommandError, match="not delivered"):
        call_command("audit", "checkpoint", stdout=io.StringIO())
    assert [c.seq for c in audit_checkpoints_read().checkpoints] == [1]


def test_beat_schedule_and_task() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry == {"task": "closeout.audit_checkpoint", "schedule": 3600.0}
    append(2)
    assert audit_checkpoint_task.name == "closeout.audit_checkpoint"
    assert audit_checkpoint_task.run()["seq"] == 2


def test_a_finished_batch_writes_a_checkpoint(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from closeout.batches.models import BatchAction, BatchState
    from closeout.batches.services import batch_create, batch_start
    from tests.factories import PO, complete, make_document, org_tree

    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    org = org_tree()
    buyer = user_with_role("cp-buyer", "operator", org.company)
    ready = [complete(make_document(PO, org.dept_a)) for _ in range(2)]
    job = batch_create(
        actor=buyer,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[d.number for d in ready],
        reason_code="completed",
    )
    assert not audit_checkpoints_read().checkpoints
    with django_capture_on_commit_callbacks(execute=True):
        batch_start(actor=buyer, job=job)
    job.refresh_from_db()
    assert job.state == BatchState.DONE
    finished = AuditEvent.objects.get(action=AuditAction.BATCH_FINISHED, object_id=str(job.pk))
    seqs = [c.seq for c in audit_checkpoints_read().checkpoints]
    assert seqs and max(seqs) >= finished.seq
    assert audit_chain_verify().intact


def test_chain_restart_needs_an_empty_chain_and_moves_the_checkpoints_aside(
    django_capture_on_commit_callbacks: Any,
) -> None:
    audit_checkpoint_write()
    append(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        audit_chain_restart()
    path = Path(settings.CLOSEOUT_AUDIT_CHECKPOINT_FILE)
    from tests.audit.test_chain import tampering

    with tampering():
        AuditEvent.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        audit_chain_restart()
    head = AuditChainHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (0, GENESIS_HASH)
    assert not path.exists()
    assert [p.name.endswith(".before-reset") for p in path.parent.iterdir()] == [True]
    assert audit_chain_verify().intact


# --- the HTTP request id ----------------------------------------------------------------------


def test_request_id_is_recorded_sealed_and_exported(org: Any, client: Client) -> None:
    token = current_request_id.set("req-7f3a")
    try:
        with transaction.atomic():
            event = audit_record(
                actor=None,
                action=AuditAction.POLICY_CHANGED,
                object_type="close_policy",
                object_id=1,
            )
    finally:
        current_request_id.reset(token)
    with transaction.atomic():
        outside = audit_record(
            actor=None, action=AuditAction.POLICY_CHANGED, object_type="close_policy", object_id=2
        )
    assert (event.http_request_id, outside.http_request_id) == ("req-7f3a", "")
    assert event.request_id == ""  # close-request ids stay apart
    assert canonical_payload(event)["http_request_id"] == "req-7f3a"
    assert audit_chain_verify().intact

    auditor: User = user_with_role("req-auditor", "auditor", org.company)
    api = Api(Client(), api_token_create(actor=None, user=auditor, name="t").raw, auditor)
    lines = b"".join(api.get("/api/audit/export", format="jsonl").streaming_content)
    rows = {r["seq"]: r for r in map(json.loads, lines.decode().splitlines())}
    assert rows[event.seq]["http_request_id"] == "req-7f3a" and rows[event.seq]["key_id"] == "k1"
    table = b"".join(api.get("/api/audit/export", format="csv").streaming_content)
    by_seq = {int(r["seq"]): r for r in csv.DictReader(io.StringIO(table.decode("utf-8-sig")))}
    assert by_seq[event.seq]["http_request_id"] == "req-7f3a"
    verify = api.get("/api/audit/verify").json()
    assert verify["intact"] is True and verify["checkpoints"] == 0

    client.force_login(auditor)
    # The English export heads its columns with their codes; the Chinese one (the default
    # language) in words (issue 17).
    for language, heading in (("en", "http_request_id"), ("zh-hans", "HTTP 请求编号")):
        page = client.get("/audit/", {"format": "csv"}, HTTP_ACCEPT_LANGUAGE=language)
        text = b"".join(page.streaming_content) if page.streaming else page.content
        header, *body = list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))
        assert heading in header
        column = header.index(heading)
        assert "req-7f3a" in [row[column] for row in body]


def test_an_http_request_stamps_its_id_on_the_events_it_causes(org: Any, client: Client) -> None:
    """End to end through the request middleware: the X-Request-ID a request came with (or the
    id it was given) is on the audit event it wrote, and in the response."""
    auditor: User = user_with_role("req-auditor-2", "auditor", org.company)
    client.force_login(auditor)
    response = client.get("/audit/", {"format": "csv"}, headers={"X-Request-ID": "req-e2e-1"})
    assert response.status_code == 200 and response["X-Request-ID"] == "req-e2e-1"
    exported = AuditEvent.objects.filter(action=AuditAction.DATA_EXPORTED).latest("seq")
    assert exported.http_request_id == "req-e2e-1"
    response = client.get("/audit/", {"format": "csv"})
    exported = AuditEvent.objects.filter(action=AuditAction.DATA_EXPORTED).latest("seq")
    assert exported.http_request_id == response["X-Request-ID"] != ""
    assert audit_chain_verify().intact
