"""Every export the workbench offers, downloaded from a zh-hans page: Chinese column headings
and no raw code in a cell (issue 17 §3), CSV and .xlsx alike. The English page keeps its
English export (tests/reports/test_diagnostics_web.py)."""

import csv
import io
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponseBase
from django.urls import reverse
from openpyxl import load_workbook

from closeout.batches.services import batch_start
from closeout.reports.diagnostics import CHECKS_BY_CODE
from tests.factories import PO, Org
from tests.web.conftest import signed_in
from tests.web.test_chinese_walk import build_world, data_values
from tests.web.zh_check import raw_codes, text_problems

# Cells that hold machine data on purpose, for integrations: the JSON of an audit event
# and its hash (their headings are Chinese; the values are read by programs).
MACHINE_COLUMNS = {"数据(JSON)", "哈希"}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def world(org: Org) -> dict[str, Any]:
    return build_world(org)


def _body(response: HttpResponseBase) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return response.content  # type: ignore[attr-defined]


def sheets(response: HttpResponseBase) -> dict[str, list[list[Any]]]:
    """The tables of a download: one for a CSV, one per sheet for an .xlsx."""
    assert response.status_code == 200, response.status_code
    content = _body(response)
    if response["Content-Type"].startswith("text/csv"):
        text = content.decode("utf-8")
        assert text.startswith("\ufeff")
        return {"csv": list(csv.reader(io.StringIO(text[1:])))}
    book = load_workbook(io.BytesIO(content), read_only=True)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book}


def export_problems(response: HttpResponseBase, *, codes: set[str], data: set[str]) -> list[str]:
    found = []
    for title, rows in sheets(response).items():
        assert rows, title
        headers = [str(h or "") for h in rows[0]]
        texts = [title, *headers]
        found.extend(f"{title}: heading “{h}” is not Chinese" for h in headers if not CJK.search(h))
        for row in rows[1:]:
            texts.extend(
                v
                for h, v in zip(headers, row, strict=False)
                if isinstance(v, str) and h not in MACHINE_COLUMNS
            )
        found.extend(f"{title}: {p}" for p in text_problems(texts, codes=codes, data=data))
    return found


def export_urls(world: dict[str, Any]) -> list[tuple[str, str]]:
    """(who downloads, url) for each export of the workbench."""
    job = world["job"]
    queue = reverse("web:queue", args=[PO])
    urls = [
        ("operator", f"{queue}?format=csv"),
        ("operator", f"{queue}?format=xlsx"),
        ("operator", reverse("web:batch_csv", args=[job.pk])),
        ("operator", reverse("web:batch_csv", args=[job.pk]) + "?format=xlsx"),
        ("auditor", reverse("web:audit") + "?format=csv"),
        ("auditor", reverse("web:audit") + "?format=xlsx"),
        ("auditor", reverse("web:reports") + "?export=xlsx"),
    ]
    urls.extend(
        ("auditor", reverse("web:diagnostic", args=[code]) + "?format=csv")
        for code in CHECKS_BY_CODE
    )
    urls.append(("auditor", reverse("web:diagnostic", args=["po_quantities"]) + "?format=xlsx"))
    return urls


def test_every_export_in_chinese_has_chinese_headings_and_no_raw_code(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    people: dict[str, User] = world["people"]
    with django_capture_on_commit_callbacks(execute=True):
        batch_start(actor=people["operator"], job=world["job"], workers=1)
    codes = raw_codes()
    data = data_values() | {u.get_username() for u in people.values()}
    found = {}
    for who, url in export_urls(world):
        response = signed_in(people[who], "zh-hans").get(url)
        problems = export_problems(response, codes=codes, data=data)
        if problems:
            found[url] = problems
    assert not found, "\n".join(f"{url}: {p[:6]}" for url, p in found.items())


def test_the_check_fails_on_an_english_heading_and_a_raw_code(db: None) -> None:
    from django.http import HttpResponse

    response = HttpResponse(
        "\ufeff编号,state,结案状态\nPO-1,closed,已结案\n".encode(), content_type="text/csv"
    )
    found = export_problems(response, codes={"closed", "state"}, data=set())
    assert any("“state”" in p for p in found) and any("“closed”" in p for p in found)
    assert any("heading “state”" in p for p in found)


@pytest.mark.parametrize("language", ["en"])
def test_the_english_batch_export_keeps_its_codes(world: dict[str, Any], language: str) -> None:
    people: dict[str, User] = world["people"]
    response = signed_in(people["operator"], language).get(
        reverse("web:batch_csv", args=[world["job"].pk])
    )
    rows = sheets(response)["csv"]
    assert rows[0] == ["document", "state", "predicted", "predicted_message", "outcome", "message"]
