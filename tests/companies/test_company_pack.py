"""Evidence packs per company: a company's pack holds only its documents, their lines and
events, and of the audit chain segment only the events about them in full (the others reduced
to their links, so the segment still verifies); an auditor of that company may export it."""

import csv
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.api.services import api_token_create
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.errors import PermissionDenied
from closeout.reports.archive_pack import Period, archive_pack_export, period_parse
from closeout.reports.archive_verify import archive_pack_verify
from tests.api.conftest import Api
from tests.companies.conftest import two_companies
from tests.factories import user_with_role
from tests.reports.test_archive import closed_doc

pytestmark = pytest.mark.django_db

DAYS_AGO = 400


@pytest.fixture
def world() -> dict[str, Any]:
    a, b, dept_a, dept_b = two_companies(("CO-A", "CO-B"))
    sup = user_with_role("sup", "supervisor", a.unit)
    grant_create(actor=None, user=sup, role=Role.objects.get(code="supervisor"), org_unit=b.unit)
    mine = closed_doc(sup, dept_a, DAYS_AGO)
    theirs = closed_doc(sup, dept_b, DAYS_AGO)
    day = timezone.localdate() - timedelta(days=DAYS_AGO)
    return {
        "a": a,
        "b": b,
        "mine": mine,
        "theirs": theirs,
        "period": period_parse(f"{day:%Y-%m}"),
        "auditor_a": user_with_role("aud-a", "auditor", a.unit),
        "auditor_all": _auditor_of_both(a.unit, b.unit),
    }


def _auditor_of_both(*units: Any) -> User:
    user = user_with_role("aud-all", "auditor", units[0])
    for unit in units[1:]:
        grant_create(actor=None, user=user, role=Role.objects.get(code="auditor"), org_unit=unit)
    return user


def _numbers(pack: zipfile.ZipFile) -> set[str]:
    text = pack.read("documents.csv").decode("utf-8-sig")
    return {row["number"] for row in csv.DictReader(io.StringIO(text))}


def test_a_company_pack_holds_its_documents_and_their_audit_events_only(
    world: dict[str, Any], tmp_path: Path
) -> None:
    period: Period = world["period"]
    path = tmp_path / "a.zip"
    result = archive_pack_export(
        actor=world["auditor_a"], period=period, out=path, company=world["a"]
    )
    assert result.manifest["company"] == "CO-A"
    with zipfile.ZipFile(path) as pack:
        assert _numbers(pack) == {world["mine"].number}
        lines = [json.loads(x) for x in pack.read("audit.jsonl").decode().splitlines()]
    full = [x for x in lines if not x.get("redacted")]
    hidden = [x for x in lines if x.get("redacted")]
    assert full and hidden
    assert {x["object_id"] for x in full} == {str(world["mine"].pk)}
    assert all(set(x) == {"seq", "prev_hash", "hash", "key_id", "redacted"} for x in hidden)
    assert world["theirs"].number not in path.read_bytes().decode("latin-1")
    verdict = archive_pack_verify(path)
    assert verdict.intact, verdict.problems
    event = AuditEvent.objects.filter(action=AuditAction.ARCHIVE_PACK_EXPORTED).latest("seq")
    assert event.data["company"] == "CO-A"


def test_a_company_auditor_gets_only_its_own_company(world: dict[str, Any], tmp_path: Path) -> None:
    period: Period = world["period"]
    with pytest.raises(PermissionDenied):
        archive_pack_export(actor=world["auditor_a"], period=period, out=tmp_path / "b.zip",
                            company=world["b"])  # fmt: skip
    with pytest.raises(PermissionDenied):
        archive_pack_export(actor=world["auditor_a"], period=period, out=tmp_path / "all.zip")
    # Through the API: its own company's pack, 404-free refusals for the other and for all.
    api = Api(Client(), api_token_create(actor=None, user=world["auditor_a"], name="t").raw)
    own = api.get("/api/archive/packs", period=period.label, company="CO-A")
    assert own.status_code == 200 and own["Content-Type"] == "application/zip"
    assert api.get("/api/archive/packs", period=period.label, company="CO-B").status_code == 403
    assert api.get("/api/archive/packs", period=period.label).status_code == 403


def test_a_redacted_event_is_refused_in_a_whole_pack_and_a_changed_link_is_found(
    world: dict[str, Any], tmp_path: Path
) -> None:
    period: Period = world["period"]
    path = tmp_path / "a"
    archive_pack_export(actor=world["auditor_all"], period=period, out=path, company=world["a"])
    audit = path / "audit.jsonl"
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    hidden = next(i for i, x in enumerate(lines) if x.get("redacted"))
    lines[hidden]["hash"] = "0" * 64
    audit.write_text("".join(json.dumps(x, sort_keys=True) + "\n" for x in lines))
    verdict = archive_pack_verify(path)
    assert not verdict.intact and "does not link" in verdict.first_problem
    # An event about the company's documents reduced to its links is found too.
    hiding = tmp_path / "hiding"
    archive_pack_export(actor=world["auditor_all"], period=period, out=hiding, company=world["a"])
    audit = hiding / "audit.jsonl"
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    shown = next(i for i, x in enumerate(lines) if not x.get("redacted"))
    lines[shown] = {k: lines[shown].get(k, "") for k in ("seq", "prev_hash", "hash", "key_id")}
    lines[shown]["redacted"] = True
    audit.write_text("".join(json.dumps(x, sort_keys=True) + "\n" for x in lines))
    assert "were redacted or removed" in archive_pack_verify(hiding).first_problem
    whole = tmp_path / "whole"
    archive_pack_export(actor=world["auditor_all"], period=period, out=whole, company=world["a"])
    manifest = json.loads((whole / "manifest.json").read_text())
    manifest["company"] = None
    (whole / "manifest.json").write_text(json.dumps(manifest))
    assert "redacted event in a pack of every company" in archive_pack_verify(whole).first_problem


def test_cli_export_takes_a_company(world: dict[str, Any], tmp_path: Path) -> None:
    out = io.StringIO()
    call_command(
        "archive", "export", "--period", world["period"].label, "--out",
        str(tmp_path / "cli.zip"), "--company", "CO-B", "--as", "aud-all", stdout=out,
    )  # fmt: skip
    with zipfile.ZipFile(tmp_path / "cli.zip") as pack:
        assert _numbers(pack) == {world["theirs"].number}
