"""Parsing shared by the approval commands: request ids and attachment files named on the
command line (users, roles, units and grants: `access.management.commands._shared`). (A
leading underscore: Django does not take this module for a command.)"""

from pathlib import Path

from django.utils.translation import gettext_noop

from closeout.access.management.commands._shared import parse_id, user_for
from closeout.approvals.models import CloseRequest
from closeout.core.errors import InvalidInput, NotFound


def parse_ids(values: list[str], what: str) -> list[int]:
    """'3' '4,5' → [3, 4, 5], each once, in the order given."""
    ids = [parse_id(part, what) for value in values for part in value.split(",") if part.strip()]
    if not ids:
        raise InvalidInput(
            gettext_noop("no %(what)s given"), details={"field": what}, params={"what": what}
        )
    return list(dict.fromkeys(ids))


def request_for(value: str) -> CloseRequest:
    request_id = parse_id(value, "request id")
    request = (
        CloseRequest.objects.select_related("document", "document__org_unit", "requester")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(
            gettext_noop("no close request #%(request_id)s"),
            details={"request": request_id},
            params={"request_id": request_id},
        )
    return request


def read_attachments(paths: list[str] | None) -> list[tuple[str, bytes]]:
    """(file name, content) of each --attach FILE; a missing or unreadable file is named."""
    files: list[tuple[str, bytes]] = []
    for raw in paths or []:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise InvalidInput(
                gettext_noop("--attach: no file '%(raw)s'"),
                details={"field": "attach"},
                params={"raw": raw},
            )
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(
                gettext_noop("--attach: cannot read '%(raw)s': %(strerror)s"),
                details={"field": "attach"},
                params={"raw": raw, "strerror": exc.strerror},
            ) from exc
        files.append((path.name, content))
    return files


__all__ = ["parse_id", "parse_ids", "read_attachments", "request_for", "user_for"]
