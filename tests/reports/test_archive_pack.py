"""Evidence packs (S15): what a period's pack holds, its export record in the audit chain, and
`verify` finding every kind of tampering (file changed, missing, added, audit event edited or
removed, head mismatch) with exit status 2."""

import csv
import hashlib
import io
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditChainHead, AuditEvent
from closeout.core.errors import InvalidInput, PermissionDenied
from closeout.documents.models import Document
from closeout.reports.archive import archive_run
from closeout.reports.archive_pack import Period, archive_pack_export, period_parse
from closeout.reports.archive_verify import archive_pack_verify
from tests.audit.test_chain import tampering
from tests.factories import PO, Org, audit_head, post, ready_document, user_with_role
from tests.reports.test_archive import closed_doc

pytestmark = pytest.mark.django_db

DAYS_AGO = 400


@pytest.fixture
def auditor(org: Org) -> User:
    return user_with_role("aud", "auditor", org.company)


@pytest.fixture
def period() -> Period:
    day = timezone.localdate() - timedelta(days=DAYS_AGO)
    return period_parse(f"{day:%Y-%m}")


@pytest.fixture
def docs(org: Org, supervisor: User) -> dict[str, Document]:
    """Two documents closed in the period (one then archived), one closed outside it, one open."""
    archived = closed_doc(supervisor, org.dept_a, DAYS_AGO, remark="=SUM(A1:A9) 备注")
    archive_run()
    closed = closed_doc(supervisor, org.dept_b, DAYS_AGO)
    post(closed, "receipt", 1, 1, external_id="LATE-RECEIPT")  # quarantined, still evidence
    outside = closed_doc(supervisor, org.dept_a, DAYS_AGO - 60)
    open_doc = ready_document(PO, org.dept_a)
    return {"archived": archived, "closed": closed, "outside": outside, "open": open_doc}


def rows(pack: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    text = pack.read(name).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def export(actor: User, period: Period, path: Path) -> Path:
    archive_pack_export(actor=actor, period=period, out=path)
    return path


def test_period_parsing() -> None:
    march = period_parse("2026-03")
    assert (march.start, march.end, march.label) == (date(2026, 3, 1), date(2026, 3, 31), "2026-03")
    assert period_parse("2024-02").end == date(2024, 2, 29)
    span = period_parse("2026-03-05..2026-04-02")
    assert (span.start, span.end, span.label) == (
        date(2026, 3, 5),
        date(2026, 4, 2),
        "2026-03-05..2026-04-02",
    )
    for bad in ("2026-13", "March", "2026-03-05..2026-03-01", "2026-03-05..x"):
        with pytest.raises(InvalidInput, match="period"):
            period_parse(bad)


def test_pack_contents_and_export_record(
    docs: dict[str, Document], auditor: User, period: Period, tmp_path: Path
) -> None:
    path = export(auditor, period, tmp_path / "pack.zip")
    with zipfile.ZipFile(path) as pack:
        assert sorted(pack.namelist()) == sorted(
            ["documents.csv", "lines.csv", "events.csv", "audit.jsonl", "manifest.json"]
        )
        manifest = json.loads(pack.read("manifest.json"))
        documents = rows(pack, "documents.csv")
        lines = rows(pack, "lines.csv")
        events = rows(pack, "events.csv")
        audit = [json.loads(line) for line in pack.read("audit.jsonl").decode().splitlines()]
        for name, entry in manifest["files"].items():
            assert hashlib.sha256(pack.read(name)).hexdigest() == entry["sha256"]
    numbers = {d["number"]: d["close_state"] for d in documents}
    assert numbers == {docs["archived"].number: "archived", docs["closed"].number: "closed"}
    # Evidence keeps the database's value: no apostrophe in front of a formula character.
    remark = next(d for d in documents if d["number"] == docs["archived"].number)["close_remark"]
    assert remark == "=SUM(A1:A9) 备注"
    assert len(lines) == 4 and {line["document.number"] for line in lines} == set(numbers)
    assert "LATE-RECEIPT" in {e["external_id"] for e in events}
    assert manifest["files"]["documents.csv"]["rows"] == 2
    assert manifest["files"]["lines.csv"]["rows"] == 4
    assert manifest["files"]["events.csv"]["rows"] == len(events)
    assert manifest["period"] == {
        "label": period.label,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
    }
    assert manifest["created_by"] == "aud"
    # The audit segment: contiguous from the first event about a pack document to the head.
    ids = {str(docs["archived"].pk), str(docs["closed"].pk)}
    first = AuditEvent.objects.filter(object_type="document", object_id__in=ids).order_by("seq")[0]
    assert audit[0]["seq"] == first.seq == manifest["audit"]["first_seq"]
    assert [e["seq"] for e in audit] == list(range(first.seq, audit[-1]["seq"] + 1))
    assert manifest["chain_head"] == {"seq": audit[-1]["seq"], "hash": audit[-1]["hash"]}
    assert manifest["files"]["audit.jsonl"]["rows"] == len(audit)
    # The export itself is in the chain, right after the head the pack recorded.
    exported = AuditEvent.objects.get(seq=manifest["chain_head"]["seq"] + 1)
    assert exported.action == AuditAction.ARCHIVE_PACK_EXPORTED
    assert exported.actor_name == "aud" and exported.object_id == period.label
    with zipfile.ZipFile(path) as pack:
        digest = hashlib.sha256(pack.read("manifest.json")).hexdigest()
    assert exported.data["manifest_sha256"] == digest


def test_export_needs_audit_view(
    docs: dict[str, Document], operator: User, period: Period, tmp_path: Path
) -> None:
    before = audit_head()
    with pytest.raises(PermissionDenied, match=r"audit\.view"):
        export(operator, period, tmp_path / "pack.zip")
    assert audit_head() == before and not (tmp_path / "pack.zip").exists()


def test_verify_intact_zip_and_directory_even_after_the_chain_moved_on(
    docs: dict[str, Document], auditor: User, period: Period, tmp_path: Path, supervisor: User
) -> None:
    zipped = export(auditor, period, tmp_path / "pack.zip")
    folder = export(auditor, period, tmp_path / "pack-dir")
    closed_doc(supervisor, docs["open"].org_unit, 1)  # the live chain moves on
    for pack in (zipped, folder):
        verdict = archive_pack_verify(pack)
        assert verdict.intact, verdict.problems
        assert verdict.live_checked and verdict.files_checked == 4 and verdict.events_checked > 0


def test_empty_period_gives_a_verifiable_pack(org: Org, auditor: User, tmp_path: Path) -> None:
    path = export(auditor, period_parse("2001-01"), tmp_path / "empty.zip")
    with zipfile.ZipFile(path) as pack:
        manifest = json.loads(pack.read("manifest.json"))
    assert manifest["files"]["documents.csv"]["rows"] == 0
    assert manifest["audit"]["first_seq"] is None
    assert archive_pack_verify(path).intact


# --- tampering --------------------------------------------------------------------------------


def rewrite(path: Path, change: Any) -> None:
    """Rewrite the zip at `path`: `change(members)` edits the dict of name -> bytes."""
    with zipfile.ZipFile(path) as pack:
        members = {name: pack.read(name) for name in pack.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as pack:
        for name, data in members.items():
            pack.writestr(name, data)


def reseal(members: dict[str, bytes], name: str) -> None:
    """What a careful forger does: update the file's hash in the manifest too."""
    manifest = json.loads(members["manifest.json"])
    manifest["files"][name]["sha256"] = hashlib.sha256(members[name]).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()


def edit_csv(members: dict[str, bytes]) -> None:
    members["documents.csv"] = members["documents.csv"].replace(b",archived,", b",closed,", 1)


def edit_manifest_hash(members: dict[str, bytes]) -> None:
    manifest = json.loads(members["manifest.json"])
    manifest["files"]["lines.csv"]["sha256"] = "0" * 64
    members["manifest.json"] = json.dumps(manifest).encode()


def remove_file(members: dict[str, bytes]) -> None:
    del members["events.csv"]


def add_file(members: dict[str, bytes]) -> None:
    members["notes.txt"] = b"added later"


def _audit_lines(members: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in members["audit.jsonl"].decode().splitlines()]


def _set_audit(members: dict[str, bytes], events: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in events)
    members["audit.jsonl"] = text.encode()


def edit_event(members: dict[str, bytes]) -> None:
    events = _audit_lines(members)
    events[0]["reason"] = "nothing to see here"
    _set_audit(members, events)
    reseal(members, "audit.jsonl")


def edit_event_unsealed(members: dict[str, bytes]) -> None:
    events = _audit_lines(members)
    events[1]["actor_name"] = "someone-else"
    _set_audit(members, events)


def remove_event(members: dict[str, bytes]) -> None:
    events = _audit_lines(members)
    del events[1]
    _set_audit(members, events)
    reseal(members, "audit.jsonl")


def remove_last_event(members: dict[str, bytes]) -> None:
    _set_audit(members, _audit_lines(members)[:-1])
    reseal(members, "audit.jsonl")


def edit_head(members: dict[str, bytes]) -> None:
    manifest = json.loads(members["manifest.json"])
    manifest["chain_head"]["hash"] = "f" * 64
    members["manifest.json"] = json.dumps(manifest).encode()


def reword_manifest(members: dict[str, bytes]) -> None:
    manifest = json.loads(members["manifest.json"])
    manifest["created_by"] = "somebody"
    members["manifest.json"] = json.dumps(manifest).encode()


def break_manifest(members: dict[str, bytes]) -> None:
    members["manifest.json"] = b'{"format": "closeout-archive-pack/1", "files": {}}'


@pytest.mark.parametrize(
    ("change", "kind", "words"),
    [
        (edit_csv, "file_changed", "file changed: documents.csv"),
        (edit_manifest_hash, "file_changed", "file changed: lines.csv"),
        (remove_file, "file_missing", "file missing: events.csv"),
        (add_file, "extra_file", "extra file: notes.txt"),
        (edit_event, "event_edited", "was edited"),
        (edit_event_unsealed, "event_edited", "was edited"),
        (remove_event, "event_removed", "is missing"),
        (remove_last_event, "event_removed", "newest events were removed"),
        (edit_head, "head_mismatch", "head hash"),
        (reword_manifest, "manifest_changed", "not the one the audit log recorded"),
        (break_manifest, "manifest_invalid", "'files' must list exactly"),
    ],
)
def test_verify_names_the_tampering(
    docs: dict[str, Document],
    auditor: User,
    period: Period,
    tmp_path: Path,
    change: Any,
    kind: str,
    words: str,
) -> None:
    path = export(auditor, period, tmp_path / "pack.zip")
    rewrite(path, change)
    verdict = archive_pack_verify(path)
    assert not verdict.intact
    assert verdict.kinds[0] == kind, verdict.problems
    assert words in verdict.first_problem
    with pytest.raises(CommandError, match="pack broken") as raised:
        call_command("archive", "verify", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert raised.value.returncode == 2
    assert words in str(raised.value)


def test_live_head_mismatch_when_the_chain_was_rewritten(
    docs: dict[str, Document], auditor: User, period: Period, tmp_path: Path
) -> None:
    path = export(auditor, period, tmp_path / "pack.zip")
    head_seq = json.loads(zipfile.ZipFile(path).read("manifest.json"))["chain_head"]["seq"]
    with tampering():
        AuditEvent.objects.filter(seq=head_seq).update(hash="e" * 64)
    verdict = archive_pack_verify(path)
    assert verdict.kinds == ["head_mismatch"] and "head mismatch" in verdict.first_problem
    assert archive_pack_verify(path, live=False).intact  # offline: the pack itself is whole


def test_live_head_beyond_the_database(
    docs: dict[str, Document], auditor: User, period: Period, tmp_path: Path
) -> None:
    path = export(auditor, period, tmp_path / "pack.zip")
    with tampering():
        AuditChainHead.objects.filter(pk=1).update(last_seq=1)
    verdict = archive_pack_verify(path)
    assert verdict.kinds == ["head_mismatch"] and "beyond" in verdict.first_problem


def test_cli_export_and_verify(
    docs: dict[str, Document], auditor: User, period: Period, tmp_path: Path
) -> None:
    path = tmp_path / "pack.zip"
    out = io.StringIO()
    call_command(
        "archive", "export", "--period", period.label, "--out", str(path), "--as", "aud", stdout=out
    )
    assert f"evidence pack of {period.label}" in out.getvalue()
    assert "manifest sha256" in out.getvalue()
    out = io.StringIO()
    call_command("archive", "verify", str(path), stdout=out)
    assert out.getvalue().startswith("intact:")
    out = io.StringIO()
    call_command("archive", "verify", str(path), "--offline", stdout=out)
    assert "offline" in out.getvalue()


def test_cli_refusals(
    docs: dict[str, Document], operator: User, auditor: User, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="period 'March'") as raised:
        call_command(
            "archive", "export", "--period", "March", "--out", str(tmp_path / "p.zip"),
            "--as", "op", stdout=io.StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 1
    with pytest.raises(CommandError, match=r"lacks permission 'audit\.view'"):
        call_command(
            "archive", "export", "--period", "2026-03", "--out", str(tmp_path / "p.zip"),
            "--as", "op", stdout=io.StringIO(),
        )  # fmt: skip
    with pytest.raises(CommandError, match="does not exist") as raised:
        call_command("archive", "verify", str(tmp_path / "none.zip"), stdout=io.StringIO())
    assert raised.value.returncode == 1
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="neither a zip"):
        call_command("archive", "verify", str(junk), stdout=io.StringIO())
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(CommandError, match="not an empty directory"):
        call_command(
            "archive", "export", "--period", "2026-03", "--out", str(busy),
            "--as", "aud", stdout=io.StringIO(),
        )  # fmt: skip
