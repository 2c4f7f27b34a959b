"""JSON log lines: one object per line with the request they belong to."""

import json
import logging
from typing import Any

import pytest
from django.test import Client

from closeout.core.logs import JsonFormatter
from closeout.core.request_id import current_request_id

FIELDS = {"time", "level", "logger", "message", "request_id", "user", "path", "status"}
FIELDS |= {"method", "duration"}


def test_a_record_is_one_json_line_with_the_current_request_id() -> None:
    record = logging.LogRecord(
        "closeout.x", logging.WARNING, __file__, 1, "结案 %s", ("PO1",), None
    )
    token = current_request_id.set("req-7")
    try:
        line = JsonFormatter().format(record)
    finally:
        current_request_id.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == FIELDS
    assert entry["message"] == "结案 PO1" and entry["level"] == "WARNING"
    assert entry["logger"] == "closeout.x" and entry["request_id"] == "req-7"
    assert entry["time"].endswith("+00:00")


def test_a_traceback_stays_inside_the_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError" in json.loads(line)["exception"]


@pytest.mark.django_db
def test_each_request_writes_one_line_with_user_path_status_and_duration(
    client: Client, caplog: Any, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("logged", password="x-test-only")
    client.force_login(user)
    with caplog.at_level(logging.INFO, logger="closeout.request"):
        response = client.get("/notifications/?x=secret-token", headers={"X-Request-ID": "r-1"})
    (record,) = [r for r in caplog.records if r.name == "closeout.request"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "r-1" == response["X-Request-ID"]
    assert entry["user"] == "logged" and entry["path"] == "/notifications/"
    assert entry["status"] == 200 and entry["method"] == "GET"
    assert isinstance(entry["duration"], float) and entry["duration"] >= 0
    assert "secret-token" not in json.dumps(entry)  # query strings are not logged
