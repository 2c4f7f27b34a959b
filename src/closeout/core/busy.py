"""A request that met a database busy with other work: SQLite's write lock held past the busy
timeout, or a PostgreSQL lock wait, deadlock or serialization failure. Its transaction rolled
back whole, so nothing was saved and the same request may simply be sent again: the page and the
API answer 503 with Retry-After, in the reader's language, instead of a server error."""

from django.db import OperationalError
from django.http import JsonResponse
from django.utils.translation import gettext_noop

from closeout.core.errors import ServiceUnavailable

# PostgreSQL: lock_not_available, deadlock_detected, serialization_failure.
_BUSY_SQLSTATES = {"55P03", "40P01", "40001"}

RETRY_AFTER_SECONDS = 5


class DatabaseBusy(ServiceUnavailable):
    code = "database_busy"


def database_busy(exc: BaseException) -> DatabaseBusy | None:
    """The refusal to answer with when `exc` says the database was busy; None for any other
    error (a real server error, which stays one)."""
    if not isinstance(exc, OperationalError):
        return None
    sqlstate = getattr(exc.__cause__, "sqlstate", None)  # psycopg's error, which Django wraps
    if sqlstate not in _BUSY_SQLSTATES and "locked" not in str(exc):
        return None
    return DatabaseBusy(
        gettext_noop(
            "the database is busy with other work and nothing was saved; try again in "
            "%(seconds)s seconds"
        ),
        details={"retry_after": RETRY_AFTER_SECONDS},
        params={"seconds": RETRY_AFTER_SECONDS},
    )


def busy_json_response(busy: DatabaseBusy) -> JsonResponse:
    """The API's answer: its error body ({"code", "message", "details"}) with Retry-After."""
    response = JsonResponse(
        busy.as_dict(), status=busy.http_status, json_dumps_params={"ensure_ascii": False}
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
