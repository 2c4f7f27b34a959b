"""Archive through the API: the evidence pack of a period, its verification, the runs."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditEvent
from closeout.documents.models import Document
from closeout.reports.archive import archive_run
from tests.api.conftest import ApiFactory, download, error_of, upload
from tests.factories import Org
from tests.reports.test_archive import closed_doc

pytestmark = pytest.mark.django_db


@pytest.fixture
def archived(org: Org, supervisor: User) -> Document:
    doc = closed_doc(supervisor, org.dept_a, 400)
    archive_run()
    return doc


def month(days_ago: int) -> str:
    return f"{timezone.localdate() - timedelta(days=days_ago):%Y-%m}"


def test_pack_download_then_verify(api_for: ApiFactory, archived: Document) -> None:
    api = api_for("auditor")
    response = api.get("/api/archive/packs", period=month(400))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    pack = download(response)
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        assert "manifest.json" in archive.namelist()
        assert archived.number in archive.read("documents.csv").decode()
    assert AuditEvent.objects.filter(action=AuditAction.ARCHIVE_PACK_EXPORTED).count() == 1
    verdict = upload(api, "/api/archive/verify", "pack", "pack.zip", pack)
    assert verdict.status_code == 200, verdict.content
    body = verdict.json()
    assert body["intact"] is True and body["problems"] == [] and body["period"] == month(400)
    assert body["live_checked"] is True and body["files_checked"] == 4


def test_changed_pack_is_not_intact(api_for: ApiFactory, archived: Document) -> None:
    api = api_for("auditor")
    pack = download(api.get("/api/archive/packs", period=month(400)))
    changed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pack)) as source, zipfile.ZipFile(changed, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "documents.csv":
                data = data.replace(archived.number.encode(), b"FORGED-1")
            target.writestr(name, data)
    body = upload(api, "/api/archive/verify", "pack", "pack.zip", changed.getvalue()).json()
    assert body["intact"] is False
    assert any("documents.csv" in p for p in body["problems"])
    assert "file_changed" in body["kinds"]


def test_runs_listed(api_for: ApiFactory, archived: Document) -> None:
    runs = api_for("auditor").get("/api/archive/runs").json()
    assert len(runs) == 1 and runs[0]["archived"] == 1 and runs[0]["actor"] == "system"
    assert runs[0]["dry_run"] is False


def test_archive_needs_audit_view(api_for: ApiFactory, archived: Document) -> None:
    api = api_for("operator")
    for response in (
        api.get("/api/archive/packs", period=month(400)),
        api.get("/api/archive/runs"),
        upload(api, "/api/archive/verify", "pack", "pack.zip", b"PK\x05\x06" + b"\0" * 18),
    ):
        assert response.status_code == 403
        assert "audit.view" in error_of(response)["message"]
        assert error_of(response)["details"]["permission"] == "audit.view"
    assert not AuditEvent.objects.filter(action=AuditAction.ARCHIVE_PACK_EXPORTED).exists()


def test_archive_bad_input(api_for: ApiFactory, archived: Document) -> None:
    api = api_for("auditor")
    for period in ("March", "2026-03-10..2026-03-01", ""):
        response = api.get("/api/archive/packs", period=period)
        assert response.status_code == 422, period
        assert error_of(response)["details"]["field"] == "period"
    missing = api.get("/api/archive/packs")
    assert missing.status_code == 422 and error_of(missing)["details"]["field"] == "period"
    not_zip = upload(api, "/api/archive/verify", "pack", "pack.zip", b"not a zip")
    assert not_zip.status_code == 422 and error_of(not_zip)["details"]["field"] == "pack"
    no_file = api.client.post("/api/archive/verify", {}, headers=api._headers(None))
    assert no_file.status_code == 422 and error_of(no_file)["details"]["field"] == "pack"
    assert api.get("/api/archive/runs", limit=0).status_code == 422
    assert not AuditEvent.objects.filter(action=AuditAction.ARCHIVE_PACK_EXPORTED).exists()
