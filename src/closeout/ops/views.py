"""/healthz, /readyz and /metrics: plain views outside the workbench and the API (no login,
no session, no CSRF)."""

import hmac
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from closeout.core.metrics import process_registry
from closeout.ops.collectors import scrape_registry
from closeout.ops.probes import readiness

LOOPBACK = {"127.0.0.1", "::1"}
# A proxy on the same machine makes every outside caller look like the loopback address.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serves requests; touches no database."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: 200 when every check passes, else 503 naming the failing ones."""
    checks = readiness()
    ready = all(c.ok for c in checks)
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return JsonResponse(body, status=200 if ready else 503)


def metrics_allowed(request: HttpRequest) -> bool:
    """With CLOSEOUT_METRICS_TOKEN set: only `Authorization: Bearer <token>`. Without it: only
    direct calls from the loopback address (no proxy header)."""
    token = settings.CLOSEOUT_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    return request.META.get("REMOTE_ADDR") in LOOPBACK and not any(
        h in request.headers for h in PROXY_HEADERS
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return JsonResponse(
            {
                "code": "forbidden",
                "message": "metrics need the bearer token of CLOSEOUT_METRICS_TOKEN "
                "(or, when none is set, a call from the loopback address)",
                "details": {},
            },
            status=403,
        )
    body = generate_latest(process_registry()) + generate_latest(scrape_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
