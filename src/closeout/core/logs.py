"""Log lines as JSON objects, one per line, with the request they belong to."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from closeout.core.request_id import current_request_id

# Attributes a request line carries (set through `extra=`); the others come from the record.
REQUEST_FIELDS = ("user", "path", "method", "status", "duration")


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message, request_id (of the request being served,
    "" outside one), user, path, status, duration (seconds), and the traceback when there is
    one. Non-ASCII text (Chinese) is written as is."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id.get(),
        }
        for name in REQUEST_FIELDS:
            entry[name] = getattr(record, name, None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
