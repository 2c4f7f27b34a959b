"""The API object: routers, authentication, error handlers; `urls()` wraps each view in the
gate (body size, rate limit, Idempotency-Key)."""

from typing import Any

from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI

from closeout.api.auth import SessionAuth, TokenAuth, gate
from closeout.api.errors import install_handlers
from closeout.api.routers import (
    admin,
    archive,
    audit,
    batches,
    bulk,
    diagnostics,
    dimensions,
    documents,
    events,
    imports,
    reports,
    requests,
)
from closeout.api.routers._common import WRITE_ONLY_STATUSES


class ClosingApi(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        """The document of every operation, each listing the refusals it can answer
        (routers/_common.ERRORS), less 409 and 412 for reads, which change nothing."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                if method == "get":
                    for status in WRITE_ONLY_STATUSES:
                        operation["responses"].pop(status, None)
                        operation["responses"].pop(int(status), None)
        return schema


api = ClosingApi(
    title="closeout API",
    version="1",
    description=(
        "Closing (结案) of ERP documents. Authenticate with `Authorization: Bearer <token>` "
        "(create one with `closeout token create USER`) or the browser session. Money and "
        "quantities are decimal strings; times ISO 8601 with offset. Every POST honours an "
        "`Idempotency-Key` header. Errors: `{code, message, details}`; bad input is a 422 whose "
        "`details.field` names the field (`lines[0].planned_qty`). Numbers use the digits 0-9 "
        "and fit their columns; dates lie between 1900-01-01 and 2999-12-31."
    ),
    auth=[TokenAuth(), SessionAuth()],
    urls_namespace="api",
)
install_handlers(api)
api.add_router("/documents", bulk.router)
api.add_router("/documents", documents.router)
api.add_router("/documents", dimensions.router)
api.add_router("/events", events.router)
api.add_router("/requests", requests.router)
api.add_router("/batches", batches.router)
api.add_router("/sweep", batches.sweep_router)
api.add_router("/audit", audit.router)
api.add_router("/partners", admin.partners)
api.add_router("/policies", admin.policies)
api.add_router("/webhooks", admin.webhooks)
api.add_router("/tokens", admin.tokens)
api.add_router("/reports", reports.router)
api.add_router("/diagnostics", diagnostics.router)
api.add_router("/batches", diagnostics.verification_router)
api.add_router("/imports", imports.router)
api.add_router("/archive", archive.router)

_UNGATED = {"openapi-json", "openapi-view"}


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and pattern.name not in _UNGATED:
            pattern.callback = gate(pattern.callback)
    return patterns, app_name, namespace


__all__: list[Any] = ["api", "urls"]
