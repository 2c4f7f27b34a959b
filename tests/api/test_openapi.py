"""The OpenAPI document tells every status an operation answers and what its downloads are,
so that a client (and schemathesis, tests/api/test_schemathesis.py) can rely on it."""

from typing import Any

import pytest
from django.test import Client

from closeout.core.exports import XLSX_CONTENT_TYPE

pytestmark = pytest.mark.django_db

DOWNLOADS = {
    ("get", "/api/reports/kpis"): {"application/json", XLSX_CONTENT_TYPE, "text/csv"},
    ("get", "/api/archive/packs"): {"application/zip"},
    ("get", "/api/audit/export"): {"text/csv", "application/x-ndjson"},
    ("get", "/api/imports/template"): {XLSX_CONTENT_TYPE, "text/csv"},
}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


@pytest.fixture
def spec(client: Client) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_every_operation_lists_the_refusals_it_can_answer(spec: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(spec):
        statuses = set(operation["responses"])
        takes_input = bool(operation.get("parameters")) or "requestBody" in operation
        expected = {"401", "403", "404", "413", "429"} | ({"422"} if takes_input else set())
        if method != "get":
            expected |= {"409", "422"}
        if not expected <= statuses:
            missing.append((method, path, sorted(expected - statuses)))
        for status in statuses - {"200", "201"}:
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, status)
        assert not {"409", "412"} & statuses or method != "get", (method, path)
    assert missing == []
    assert len(operations(spec)) >= 44


def test_every_download_documents_its_media_types(spec: dict[str, Any]) -> None:
    documented = {}
    for method, path, operation in operations(spec):
        ok = operation["responses"].get("200") or operation["responses"].get("201")
        documented[(method, path)] = set(ok.get("content", {}))
        if not documented[(method, path)]:
            # Every success says what it is: JSON, or a file of named types.
            pytest.fail(f"{method} {path}: its success response documents no media type")
    for key, media_types in DOWNLOADS.items():
        assert documented[key] == media_types, key


def test_the_downloads_answer_the_media_types_they_document(
    client: Client, django_user_model: Any, settings: Any
) -> None:
    from tests.factories import org_tree, user_with_role

    org = org_tree()
    admin = user_with_role("doc-admin", "admin", org.company)
    client.force_login(admin)
    for path, params in [
        ("/api/reports/kpis", {"format": "xlsx"}),
        ("/api/reports/kpis", {"format": "csv", "table": "backlog"}),
        ("/api/audit/export", {"format": "csv"}),
        ("/api/audit/export", {}),
        ("/api/imports/template", {"format": "csv"}),
        ("/api/imports/template", {}),
        ("/api/archive/packs", {"period": "2026-01"}),
    ]:
        response = client.get(path, params)
        assert response.status_code == 200, (path, response.content[:300])
        media_type = response["Content-Type"].split(";")[0]
        assert media_type in DOWNLOADS[("get", path)], (path, media_type)
