"""The archive page (/archive/): retention and runs shown, the evidence pack downloaded by
holders of `audit.view` only, an uploaded pack verified; the document page's archived badge."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditEvent
from closeout.documents.models import Document
from closeout.reports.archive import archive_run
from tests.factories import Org, audit_head, set_policy, user_with_role
from tests.reports.test_archive import closed_doc
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(org: Org) -> User:
    return user_with_role("aud", "auditor", org.company)


@pytest.fixture
def archived(org: Org, supervisor: User) -> Document:
    doc = closed_doc(supervisor, org.dept_a, 400)
    archive_run()
    return doc


def month(days_ago: int) -> str:
    return f"{timezone.localdate() - timedelta(days=days_ago):%Y-%m}"


def test_page_shows_retention_and_runs(archived: Document, auditor: User, org: Org) -> None:
    set_policy("purchase_order", org.dept_b, archive_after_days=None)
    response = signed_in(auditor, "zh-hans").get(reverse("web:archive"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "各结案策略的保留期" in page and "永不" in page and ">365<" in page
    assert 'id="archive-runs"' in page and "system" in page
    assert "归档" in page  # help panel and title in Chinese


def test_page_needs_audit_view(archived: Document, operator: User) -> None:
    client = signed_in(operator)
    assert client.get(reverse("web:archive")).status_code == 403
    before = audit_head()
    response = client.post(reverse("web:archive_export"), {"period": month(400)})
    assert response.status_code == 403 and "audit.view" in response.content.decode()
    assert audit_head() == before


def test_download_and_verify_a_pack(archived: Document, auditor: User) -> None:
    client = signed_in(auditor)
    response = client.post(reverse("web:archive_export"), {"period": month(400)})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"closeout-evidence-{month(400)}.zip" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(body)) as pack:
        assert archived.number in pack.read("documents.csv").decode("utf-8-sig")
    exported = AuditEvent.objects.filter(action=AuditAction.ARCHIVE_PACK_EXPORTED).get()
    assert exported.actor_name == "aud"
    page = client.get(reverse("web:archive")).content.decode()
    assert exported.data["manifest_sha256"] in page  # listed under the packs exported
    upload = SimpleUploadedFile("pack.zip", body, content_type="application/zip")
    page = client.post(reverse("web:archive_verify"), {"pack": upload}).content.decode()
    assert 'id="pack-verdict"' in page and "Intact" in page
    # The same pack with one CSV edited.
    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data + b"x" if name == "lines.csv" else data)
    upload = SimpleUploadedFile("pack.zip", tampered.getvalue())
    page = client.post(reverse("web:archive_verify"), {"pack": upload}).content.decode()
    assert "Broken" in page and "file changed: lines.csv" in page


def test_bad_period_and_bad_upload_are_shown_at_the_field(auditor: User, org: Org) -> None:
    client = signed_in(auditor)
    response = client.post(reverse("web:archive_export"), {"period": "March"})
    assert response.status_code == 400
    assert "“March” is not a period" in response.content.decode()
    upload = SimpleUploadedFile("pack.zip", b"not a zip")
    response = client.post(reverse("web:archive_verify"), {"pack": upload})
    assert response.status_code == 400 and "neither a zip" in response.content.decode()


def test_document_page_shows_the_archived_badge(archived: Document, supervisor: User) -> None:
    page = signed_in(supervisor).get(reverse("web:document", args=[archived.pk])).content.decode()
    assert 'id="doc-archived"' in page and "archived (final)" in page
    assert 'id="reopen-button"' not in page
    page = signed_in(supervisor, "zh-hans").get(reverse("web:document", args=[archived.pk]))
    assert "已归档（最终结案）" in page.content.decode()


def test_queue_lists_archived_documents_with_the_state_filter(
    archived: Document, supervisor: User
) -> None:
    url = reverse("web:queue", args=["purchase_order"])
    client = signed_in(supervisor)
    assert archived.number in client.get(url, {"state": "archived"}).content.decode()
    assert archived.number not in client.get(url, {"state": "open"}).content.decode()
