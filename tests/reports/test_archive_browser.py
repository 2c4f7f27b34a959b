"""The archive page in a real browser: an auditor downloads the evidence pack of a period and
has the same file verified; the document page shows the archived badge."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from closeout.reports.archive import archive_run
from tests.reports.test_archive import closed_doc
from tests.web.test_browser import _missing, browser, login, new_page, people, shot

__all__ = ["browser", "people"]  # fixtures used by the test below

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]
if _missing():
    if os.environ.get("CLOSEOUT_REQUIRE_SERVICES") == "1":
        raise RuntimeError(_missing())
    pytestmark.append(pytest.mark.skip(reason=_missing()))


def test_auditor_downloads_and_verifies_an_evidence_pack(
    browser: Any, live_server: Any, people: dict[str, Any], tmp_path: Path
) -> None:
    document = closed_doc(people["supervisor"], people["org"].dept_a, 400)
    archive_run()
    month = f"{timezone.localdate() - timedelta(days=400):%Y-%m}"
    page = new_page(browser)
    login(page, live_server.url, "aud")
    page.goto(f"{live_server.url}/archive/")
    assert "365" in page.locator("#retention").inner_text()
    page.fill("#id_period", month)
    with page.expect_download() as download_info:
        page.click("#export-button")
    pack = tmp_path / "pack.zip"
    download_info.value.save_as(str(pack))
    assert pack.stat().st_size > 0
    page.goto(f"{live_server.url}/archive/")
    assert month in page.locator("#exports").inner_text()
    page.set_input_files("#id_pack", str(pack))
    page.click("#verify-button")
    assert "Intact" in page.locator("#pack-verdict").inner_text()
    shot(page, "archive-verified")
    page.goto(f"{live_server.url}/documents/{document.pk}/")
    assert "archived (final)" in page.locator("#doc-archived").inner_text()
