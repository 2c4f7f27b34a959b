"""The authorisation matrix over HTTP (issue 12, section 1): every operation of the API, read
from /api/openapi.json, × every standard role (company-wide and over one department) plus a
user without grants and an anonymous caller × targets inside and outside that department.

Every operation needs an entry in EXPECTED (a new endpoint fails the test until it gets one),
which says how to call it for a target and who may succeed. The test counts the successes the
table does not allow (must be 0) and the refusals where it promises success (must be 0 too, so
the matrix cannot pass by refusing everything); for a caller of one department it also checks
that another department's document answers exactly like a missing one, and that no list or
export names one. The same is then done for the workbench pages.

The data is built once for the module (inside a transaction rolled back at its end) and every
call runs in a savepoint that is rolled back, so each call sees the same data."""

import io
import json
import logging
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from closeout.access.selectors import user_permissions
from closeout.api.models import ApiToken
from closeout.api.services import api_token_create
from closeout.approvals.models import ApprovalRoute, CloseRequest
from closeout.batches.imports import import_validate
from closeout.batches.models import BatchAction, BatchJob, ImportFile
from closeout.batches.services import batch_create
from closeout.closing.dimension_services import line_dimension_close
from closeout.closing.services import document_close
from closeout.documents.models import Document, EventKind
from closeout.notifications.models import WebhookDelivery, WebhookEndpoint
from closeout.notifications.webhook_endpoints import webhook_endpoint_create
from closeout.reports.archive_pack import archive_pack_export, period_parse
from closeout.reports.verification import batch_verify
from tests.approvals.conftest import make_route, submit_close
from tests.batches.test_imports import csv_bytes
from tests.factories import AP, PO, complete, make_document, org_tree, post, user_with_role
from tests.web.pages import same_page

ROLES = ("admin", "operator", "supervisor", "finance", "auditor", "integration", "analyst")
# Every number of the other department's documents contains this marker; a list or export for
# a caller of department A must not.
OUT = "OUTSIDE"
SIDES = ("in", "out", "missing")
MISSING_NUMBER = "NOSUCH-0001"
MISSING_ID = 987_654


# --- who calls -----------------------------------------------------------------------------


@dataclass
class Principal:
    name: str
    role: str | None  # None: no grant (or anonymous)
    company: bool  # the grant covers the whole company (else department A only)
    user: User | None = None
    token: str | None = None
    perms: set[str] = field(default_factory=set)

    @property
    def scoped(self) -> bool:
        """A caller over department A only (the interesting rows of the matrix)."""
        return self.role is not None and not self.company

    def can(self, perm: str, side: str = "in") -> bool:
        """Holds `perm` over the target: department A's, or also B's when company-wide."""
        return perm in self.perms and (self.company or side == "in")

    def wide(self, perm: str) -> bool:
        return perm in self.perms and self.company


def _principals(org: Any) -> list[Principal]:
    people = []
    for role in ROLES:
        for company in (True, False):
            name = role if company else f"{role}_a"
            # The scoped buyer, like the demo's buyer_east, holds its role for two types.
            types = [PO, AP] if role == "operator" and not company else None
            user = user_with_role(
                f"mx-{name}", role, org.company if company else org.dept_a, doc_types=types
            )
            people.append(Principal(name, role, company, user))
    people.append(Principal("nobody", None, False, user_with_role("mx-nobody", None)))
    for p in people:
        assert p.user is not None
        p.token = api_token_create(actor=None, user=p.user, name="matrix").raw
        p.perms = user_permissions(p.user)
    people.append(Principal("anonymous", None, False))
    return people


# --- the data ------------------------------------------------------------------------------


@dataclass
class Data:
    principals: list[Principal]
    by_name: dict[str, Principal]
    unit: dict[str, str]  # side → organisation unit code
    ready: dict[str, Document]
    closed: dict[str, Document]
    request: dict[str, CloseRequest]
    batch: dict[str, BatchJob]  # in: operator_a's batch of A, out: admin's batch of B
    batch_owner: dict[str, str]
    imported: dict[str, ImportFile]
    import_owner: dict[str, str]
    webhook: WebhookEndpoint
    other_token: ApiToken
    request_owner: dict[str, str]
    pack: bytes
    period: str
    out_numbers: set[str]
    pending_event: dict[str, int]

    def number(self, kind: str, side: str) -> str:
        if side == "missing":
            return MISSING_NUMBER
        return (self.ready if kind == "ready" else self.closed)[side].number


_TAGS = {"in": "INSIDE", "out": OUT}


def _build() -> Data:
    org = org_tree()
    units = {"in": org.team_a1, "out": org.dept_b}
    principals = _principals(org)
    by_name = {p.name: p for p in principals}
    setup = user_with_role("mx-setup", "admin", org.company)
    tag = _TAGS

    def doc(side: str, what: str) -> Document:
        return make_document(PO, units[side], number=f"PO-{tag[side]}-{what}")

    ready = {side: complete(doc(side, "READY")) for side in ("in", "out")}
    closed = {}
    for side in ("in", "out"):
        closed[side] = complete(doc(side, "CLOSED"))
        document_close(actor=setup, document=closed[side], reason_code="completed")
        # Half received: in the exception queue of the sweep and in the consistency checks;
        # closed for receiving (收货关闭), for the dimension reopen.
        short = doc(side, "SHORT")
        post(short, EventKind.RECEIPT, 1, 5)
        line_dimension_close(
            actor=setup,
            document=short,
            dimension="receiving",
            reason_code="short_delivery_accepted",
            remark="matrix",
        )
    # Pending close requests (a supervisor decides); the route is then switched off so that
    # closing directly needs no approval, while the requests keep their steps.
    route = make_route("matrix close")
    request_owner = {"in": "operator_a", "out": "operator"}
    request = {
        side: submit_close(by_name[request_owner[side]].user, complete(doc(side, "REQUESTED")))
        for side in ("in", "out")
    }
    ApprovalRoute.objects.filter(pk=route.pk).update(active=False)
    make_route("matrix reopen", action="reopen", steps=(("finance", "财务"),))
    batch_owner = {"in": "operator_a", "out": "admin"}
    batch = {
        side: batch_create(
            actor=by_name[batch_owner[side]].user,
            action=BatchAction.CLOSE,
            doc_type=PO,
            numbers=[ready[side].number],
            reason_code="completed",
        )
        for side in ("in", "out")
    }
    for job in batch.values():
        batch_verify(job_id=job.pk, actor=None)
    imported = {
        side: import_validate(
            actor=by_name[batch_owner[side]].user,
            upload=io.BytesIO(_import_row(ready[side].number)),
            file_name=f"{side}.csv",
        )
        for side in ("in", "out")
    }
    webhook = webhook_endpoint_create(
        actor=setup, name="matrix hook", url="https://hooks.example.invalid/x", events=[]
    )
    WebhookDelivery.objects.create(endpoint=webhook, event="request.submitted", payload={})
    other_token = api_token_create(actor=None, user=setup, name="someone else's").token
    # A receipt awaiting inspection on each side, for its confirmation.
    pending_event = {
        side: post(doc(side, "PENDING"), EventKind.RECEIPT, 1, 1, pending=True).event.pk
        for side in ("in", "out")
    }
    period = f"{timezone.localdate():%Y-%m}"
    pack = io.BytesIO()
    archive_pack_export(actor=setup, period=period_parse(period), out=pack)
    return Data(
        principals=principals,
        by_name=by_name,
        unit={"in": org.dept_a.code, "out": org.dept_b.code, "missing": "NOSUCH-UNIT"},
        ready=ready,
        closed=closed,
        request=request,
        batch=batch,
        batch_owner=batch_owner,
        imported=imported,
        import_owner=batch_owner,
        webhook=webhook,
        other_token=other_token,
        request_owner=request_owner,
        pack=pack.getvalue(),
        period=period,
        out_numbers=set(
            Document.objects.filter(org_unit=org.dept_b).values_list("number", flat=True)
        ),
        pending_event=pending_event,
    )


def _import_row(number: str) -> bytes:
    return csv_bytes([[PO, number, "", "close", "completed", "", ""]])


SETTINGS = {
    "CLOSEOUT_TASKS_INLINE": True,
    "CELERY_BROKER_URL": "",
    "CLOSEOUT_API_RATE_PER_MINUTE": 1_000_000,
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


@pytest.fixture(scope="module")
def data(django_db_setup: None, django_db_blocker: Any) -> Iterator[Data]:
    """Built once for the module, inside a transaction rolled back at the end."""
    with override_settings(**SETTINGS), django_db_blocker.unblock(), transaction.atomic():
        yield _build()
        transaction.set_rollback(True)


@pytest.fixture
def matrix_settings() -> Iterator[None]:
    """The settings of the data, and no warning logged per refusal (hundreds of them)."""
    quiet = logging.getLogger("django.request")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with override_settings(**SETTINGS):
        yield
    quiet.setLevel(level)


@pytest.fixture(scope="module")
def operations(data: Data) -> list[tuple[str, str]]:
    """(method, path) of every operation of /api/openapi.json, read once."""
    schema = Client().get("/api/openapi.json").json()
    return [
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method in methods
        if method in {"get", "post", "put", "patch", "delete"}
    ]


# --- how to call each operation, and who may succeed -----------------------------------------


@dataclass
class Call:
    path: dict[str, Any] = field(default_factory=dict)  # path parameters
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None  # JSON
    files: dict[str, tuple[str, bytes]] | None = None  # multipart
    ident: str = ""  # the target's identifier, replaced before comparing out with missing


Build = Callable[[Data, Principal, str], Call]
Allowed = Callable[[Data, Principal, str], bool]


@dataclass
class Entry:
    build: Build
    allowed: Allowed
    # None: one call (no target); else the sides called.
    sides: tuple[str, ...] | None = SIDES
    # Out-of-scope must answer exactly like missing for callers of department A (all of them,
    # or those the predicate names).
    like_missing: bool | Callable[[Principal], bool] = True
    # A list or export: the body must not name the other department's documents.
    listing: bool = False
    # How to tell success when the status does not (events answer 200 with outcomes).
    succeeded: Callable[[Any], bool] | None = None
    # Statuses of a business refusal that come after the permission check: the caller got
    # through (e.g. resuming a job that was never started answers 422 to its owner only).
    got_through: tuple[int, ...] = ()


def _doc(kind: str = "ready", **extra: Any) -> Build:
    def build(d: Data, p: Principal, side: str) -> Call:
        number = d.number(kind, side)
        return Call(path={"doc_type": PO, "number": number}, ident=number, **extra)

    return build


def _short(**extra: Any) -> Build:
    """The half-received document, closed for receiving."""

    def build(d: Data, p: Principal, side: str) -> Call:
        number = MISSING_NUMBER if side == "missing" else f"PO-{_TAGS[side]}-SHORT"
        return Call(path={"doc_type": PO, "number": number}, ident=number, **extra)

    return build


def _req(d: Data, p: Principal, side: str) -> Call:
    rid = d.request[side].pk if side != "missing" else MISSING_ID
    return Call(path={"request_id": rid}, body={"comment": "matrix"}, ident=f"{rid}")


def _job(body: Any = None) -> Build:
    def build(d: Data, p: Principal, side: str) -> Call:
        jid = d.batch[side].pk if side != "missing" else MISSING_ID
        return Call(path={"job_id": jid}, body=body, ident=f"{jid}")

    return build


def _imp(d: Data, p: Principal, side: str) -> Call:
    iid = d.imported[side].pk if side != "missing" else MISSING_ID
    return Call(path={"import_id": iid}, ident=f"{iid}")


def _plain(**kwargs: Any) -> Build:
    return lambda d, p, side: Call(**kwargs)


def _owner(owners: str) -> Allowed:
    return lambda d, p, side: side != "missing" and p.name == getattr(d, owners)[side]


def _sees_request(d: Data, p: Principal, side: str) -> bool:
    return side != "missing" and (p.name == d.request_owner[side] or p.can("document.view", side))


def _supervises(d: Data, p: Principal, side: str) -> bool:
    """The route's step asks for the supervisor role over the document (not the requester)."""
    return side != "missing" and p.role == "supervisor" and p.can("close.approve", side)


def _verification_reader(d: Data, p: Principal, side: str) -> bool:
    return side != "missing" and (p.name == d.batch_owner[side] or p.can("report.view", side))


def _event(d: Data, p: Principal, side: str) -> Call:
    number = d.number("ready", side)
    event = {
        "doc_type": PO,
        "number": number,
        "kind": "invoice",
        "external_id": "MX-EVENT-1",
        "line_no": 1,
        "quantity": "0",
        "amount": "0",
        "occurred_at": (timezone.now() - timedelta(days=1)).isoformat(),
    }
    return Call(body={"events": [event]}, ident=number)


def _pending(d: Data, p: Principal, side: str) -> Call:
    eid = d.pending_event[side] if side != "missing" else MISSING_ID
    return Call(path={"event_id": eid}, ident=f"{eid}")


def _batch_numbers(d: Data, p: Principal, side: str) -> Call:
    number = d.number("ready", side)
    body = {"action": "close", "doc_type": PO, "numbers": [number], "reason": "completed"}
    return Call(body=body, ident=number)


def _batch_requests(d: Data, p: Principal, side: str) -> Call:
    rid = d.request[side].pk if side != "missing" else MISSING_ID
    return Call(body={"action": "approve", "request_ids": [rid]}, ident=f"{rid}")


def _import_upload(d: Data, p: Principal, side: str) -> Call:
    number = d.number("ready", side)
    return Call(files={"file": ("m.csv", _import_row(number))}, ident=number)


def _policy_patch(d: Data, p: Principal, side: str) -> Call:
    return Call(path={"doc_type": PO}, body={"org_unit": d.unit[side], "grace_days": 3})


def _token(d: Data, p: Principal, side: str) -> Call:
    if side == "in":
        own = ApiToken.objects.filter(user_id=getattr(p.user, "pk", None)).first()
        tid = own.pk if own is not None else MISSING_ID
    else:
        tid = d.other_token.pk if side == "out" else MISSING_ID
    return Call(path={"token_id": tid}, ident=f"{tid}")


def _events_applied(body: Any) -> bool:
    return body["results"][0]["outcome"] != "rejected"


def _never(d: Data, p: Principal, side: str) -> bool:
    return False


BATCH_CREATE = "POST /api/batches"

EXPECTED: dict[str, Entry] = {
    "GET /api/documents": Entry(
        _plain(query={"doc_type": PO, "limit": 500}),
        lambda d, p, s: "document.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "GET /api/documents/{doc_type}/{number}": Entry(
        _doc(), lambda d, p, s: s != "missing" and p.can("document.view", s)
    ),
    # An upsert naming department A for a number that lies in B must not change B's document.
    "PUT /api/documents/{doc_type}/{number}": Entry(
        lambda d, p, side: Call(
            path={"doc_type": PO, "number": d.number("ready", side)},
            body={
                "org_unit": d.unit["in"],
                "document_date": str(timezone.localdate() - timedelta(days=120)),
                "lines": [{"line_no": 1, "planned_qty": "10", "unit_price": "5"}],
            },
        ),
        lambda d, p, s: p.can("document.sync", s if s != "missing" else "in"),
        like_missing=False,  # a missing number is created: PUT is an upsert
    ),
    "GET /api/documents/{doc_type}/{number}/checklist": Entry(
        _doc(), lambda d, p, s: s != "missing" and p.can("document.view", s)
    ),
    "POST /api/documents/{doc_type}/{number}/close": Entry(
        _doc(body={"reason": "completed"}),
        lambda d, p, s: s != "missing" and p.can("close.direct", s),
    ),
    "POST /api/documents/{doc_type}/{number}/close-requests": Entry(
        _doc(body={"reason": "completed"}),
        lambda d, p, s: s != "missing" and p.can("close.request", s),
    ),
    "POST /api/documents/{doc_type}/{number}/reopen-requests": Entry(
        _doc("closed", body={"reason": "invoice_correction", "remark": "matrix"}),
        lambda d, p, s: s != "missing" and p.can("reopen.request", s),
    ),
    "POST /api/documents/{doc_type}/{number}/dimensions/close": Entry(
        _doc(body={"dimension": "receiving", "reason": "completed"}),
        lambda d, p, s: s != "missing" and p.can("close.direct", s),
    ),
    "POST /api/documents/{doc_type}/{number}/dimensions/reopen": Entry(
        _short(body={"dimension": "receiving", "reason": "late_delivery", "line_nos": [1]}),
        lambda d, p, s: s != "missing" and p.can("reopen.approve", s),
    ),
    "GET /api/documents/{doc_type}/{number}/audit": Entry(
        _doc(),
        lambda d, p, s: s != "missing" and p.can("audit.view", s) and p.can("document.view", s),
    ),
    "POST /api/events": Entry(
        _event,
        lambda d, p, s: s != "missing" and p.can("document.sync", s),
        succeeded=_events_applied,
    ),
    "POST /api/events/{event_id}/confirm": Entry(
        _pending, lambda d, p, s: s != "missing" and p.can("document.sync", s)
    ),
    "POST /api/events/bulk": Entry(
        _event,
        lambda d, p, s: s != "missing" and p.can("document.sync", s),
        succeeded=_events_applied,
    ),
    # As the PUT: an item naming department A for a number that lies in B must not change it.
    "POST /api/documents/bulk": Entry(
        lambda d, p, side: Call(
            body={
                "documents": [
                    {
                        "doc_type": PO,
                        "number": d.number("ready", side),
                        "org_unit": d.unit["in"],
                        "document_date": str(timezone.localdate() - timedelta(days=120)),
                        "lines": [{"line_no": 1, "planned_qty": "10", "unit_price": "5"}],
                    }
                ]
            },
        ),
        lambda d, p, s: p.can("document.sync", s if s != "missing" else "in"),
        like_missing=False,  # a missing number is created: an upsert
        succeeded=_events_applied,
    ),
    "GET /api/requests/{request_id}": Entry(_req, _sees_request),
    "POST /api/requests/{request_id}/approve": Entry(_req, _supervises),
    "POST /api/requests/{request_id}/reject": Entry(_req, _supervises),
    "POST /api/requests/{request_id}/withdraw": Entry(
        _req, lambda d, p, s: s != "missing" and p.name == d.request_owner[s]
    ),
    BATCH_CREATE: Entry(
        _batch_numbers,
        lambda d, p, s: s != "missing" and p.can("batch.run", s) and p.can("close.direct", s),
    ),
    "GET /api/batches/{job_id}": Entry(_job(), _owner("batch_owner"), like_missing=False),
    "GET /api/batches/{job_id}/items": Entry(_job(), _owner("batch_owner"), like_missing=False),
    "POST /api/batches/{job_id}/preview": Entry(_job(), _owner("batch_owner"), like_missing=False),
    "POST /api/batches/{job_id}/start": Entry(
        _job({"workers": 1}), _owner("batch_owner"), like_missing=False
    ),
    "POST /api/batches/{job_id}/resume": Entry(
        _job({"workers": 1}), _owner("batch_owner"), like_missing=False, got_through=(422,)
    ),
    "POST /api/batches/{job_id}/cancel": Entry(_job(), _owner("batch_owner"), like_missing=False),
    # The owner gets through to the refusal of a batch that never ran (reopen.approve decides
    # per document, as for a reopen batch).
    "POST /api/batches/{job_id}/undo": Entry(
        _job({"reason": "wrong_close"}),
        _owner("batch_owner"),
        like_missing=False,
        got_through=(422,),
    ),
    "POST /api/sweep/dry-run": Entry(
        _plain(body={}), lambda d, p, s: "document.view" in p.perms, sides=None, listing=True
    ),
    "GET /api/audit/verify": Entry(
        _plain(), lambda d, p, s: "audit.view" in p.perms, sides=None, listing=True
    ),
    "GET /api/audit/export": Entry(
        _plain(query={"format": "jsonl"}),
        lambda d, p, s: "audit.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "PUT /api/partners/{code}": Entry(
        _plain(path={"code": "MX-PARTNER"}, body={"name": "matrix partner"}),
        lambda d, p, s: "document.sync" in p.perms,
        sides=None,
    ),
    "GET /api/policies/{doc_type}": Entry(
        lambda d, p, side: Call(path={"doc_type": PO}, query={"org_unit": d.unit[side]}),
        lambda d, p, s: s != "missing" and p.can("document.view", s),
        like_missing=False,  # organisation units are not secret: an unknown code is a 422
    ),
    "PATCH /api/policies/{doc_type}": Entry(
        _policy_patch,
        lambda d, p, s: s != "missing" and p.can("policy.manage", s),
        like_missing=False,
    ),
    # The list: all endpoints for a manager of every company, those of the companies a
    # manager holds wholly; refused to a department's administrator (no company of theirs).
    "GET /api/webhooks": Entry(
        _plain(), lambda d, p, s: p.wide("access.manage"), sides=None, listing=True
    ),
    "POST /api/webhooks": Entry(
        _plain(body={"name": "mx", "url": "https://hooks.example.invalid/y", "events": []}),
        lambda d, p, s: p.wide("access.manage"),
        sides=None,
    ),
    "POST /api/webhooks/{endpoint_id}/deactivate": Entry(
        lambda d, p, side: Call(path={"endpoint_id": d.webhook.pk}),
        lambda d, p, s: p.wide("access.manage"),
        sides=None,
    ),
    # The delivery log of the group's endpoint: only for a manager of every company.
    "GET /api/webhooks/{endpoint_id}/deliveries": Entry(
        lambda d, p, side: Call(path={"endpoint_id": d.webhook.pk}),
        lambda d, p, s: p.wide("access.manage"),
        sides=None,
        listing=True,
    ),
    "GET /api/tokens": Entry(
        _plain(), lambda d, p, s: p.user is not None, sides=None, listing=True
    ),
    "POST /api/tokens": Entry(
        _plain(body={"name": "mx"}), lambda d, p, s: p.user is not None, sides=None
    ),
    # Own token ("in"); someone else's ("out"): only a company-wide administrator.
    "POST /api/tokens/{token_id}/revoke": Entry(
        _token,
        lambda d, p, s: (
            p.user is not None and (s == "in" or (s == "out" and p.wide("access.manage")))
        ),
        like_missing=False,  # tokens are no unit's data: another's token is a 403
    ),
    "GET /api/reports/kpis": Entry(
        _plain(), lambda d, p, s: "report.view" in p.perms, sides=None, listing=True
    ),
    # The group view: only the companies and documents of the caller's report grants.
    "GET /api/reports/group": Entry(
        _plain(query={"currency": "CNY", "rates": "G"}),
        lambda d, p, s: "report.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "GET /api/diagnostics": Entry(
        _plain(), lambda d, p, s: "report.view" in p.perms, sides=None, listing=True
    ),
    "POST /api/diagnostics/run": Entry(
        _plain(body={}), lambda d, p, s: p.wide("report.view"), sides=None
    ),
    "GET /api/diagnostics/{check}": Entry(
        _plain(path={"check": "complete_but_open"}),
        lambda d, p, s: "report.view" in p.perms,
        sides=None,
        listing=True,
    ),
    # Another unit's batch answers like a missing one to a report viewer of one unit; one
    # without report.view is refused (403) as before.
    "GET /api/batches/{job_id}/verification": Entry(
        _job(), _verification_reader, like_missing=lambda p: "report.view" in p.perms
    ),
    "POST /api/batches/{job_id}/verification": Entry(
        _job(),
        lambda d, p, s: s != "missing" and p.can("report.view", s),
        like_missing=lambda p: "report.view" in p.perms,
    ),
    "GET /api/imports/template": Entry(
        _plain(query={"format": "csv"}), lambda d, p, s: p.user is not None, sides=None
    ),
    # The upload stores a report for every caller with import.run; what it says about a row
    # naming another department's document must be what it says about a missing one.
    "POST /api/imports": Entry(_import_upload, lambda d, p, s: "import.run" in p.perms),
    # Batches and imports are their owner's (403 for another's, as before: no unit's data).
    "GET /api/imports/{import_id}": Entry(_imp, _owner("import_owner"), like_missing=False),
    "POST /api/imports/{import_id}/execute": Entry(
        _imp, _owner("import_owner"), like_missing=False
    ),
    "GET /api/archive/packs": Entry(
        lambda d, p, side: Call(query={"period": d.period}),
        lambda d, p, s: p.wide("audit.view"),
        sides=None,
    ),
    "POST /api/archive/verify": Entry(
        lambda d, p, side: Call(files={"pack": ("pack.zip", d.pack)}),
        lambda d, p, s: p.wide("audit.view"),
        sides=None,
    ),
    "GET /api/archive/runs": Entry(
        _plain(), lambda d, p, s: p.wide("audit.view"), sides=None, listing=True
    ),
}

# Variants of one operation that the table above does not cover: the same checks, by name.
VARIANTS: dict[str, tuple[str, Entry]] = {
    "POST /api/batches (request ids)": (
        BATCH_CREATE,
        Entry(
            _batch_requests,
            lambda d, p, s: s != "missing" and p.can("batch.run", s) and p.can("close.approve", s),
        ),
    ),
    "POST /api/batches (filter)": (
        BATCH_CREATE,
        Entry(
            _plain(body={"action": "close", "doc_type": PO, "filter": {}, "reason": "completed"}),
            lambda d, p, s: "batch.run" in p.perms and "close.direct" in p.perms,
            sides=None,
            listing=True,
        ),
    ),
}


# --- running the calls ---------------------------------------------------------------------


@dataclass
class Outcome:
    operation: str
    principal: str
    side: str
    status: int
    success: bool
    expected: bool
    body: bytes


def _body_of(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def _readable(raw: bytes) -> str:
    """The body as text, with the members of a zip (an evidence pack) unpacked."""
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as pack:
            return "\n".join(pack.read(n).decode("utf-8", "replace") for n in pack.namelist())
    return raw.decode("utf-8", "replace")


def _client(p: Principal, cache: dict[str, Client]) -> Client:
    if p.name not in cache:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {p.token}"} if p.token else {}
        cache[p.name] = Client(**headers)
    return cache[p.name]


def _send(client: Client, method: str, template: str, call: Call) -> tuple[int, bytes, bytes]:
    """(status, body, the items of a created batch) in a savepoint rolled back afterwards."""
    path = template.format(**call.path)
    extra = b""
    with transaction.atomic():
        if call.files is not None:
            from django.core.files.uploadedfile import SimpleUploadedFile

            files = {k: SimpleUploadedFile(n, c) for k, (n, c) in call.files.items()}
            response = client.post(path, files)
        elif method == "GET":
            response = client.get(path, call.query)
        else:
            data = json.dumps(call.body) if call.body is not None else ""
            query = "&".join(f"{k}={v}" for k, v in call.query.items())
            response = client.generic(
                method,
                path + (f"?{query}" if query else ""),
                data,
                content_type="application/json",
            )
        body = _body_of(response)
        if template == "/api/batches" and response.status_code == 201:
            # What the new batch holds, read in the same savepoint.
            items = client.get(f"/api/batches/{json.loads(body)['id']}/items", {"limit": 1000})
            extra = _body_of(items)
        transaction.set_rollback(True)
    return response.status_code, body, extra


def _normalised(raw: bytes, ident: str, operation: str) -> Any:
    """A body to compare an out-of-scope answer with a missing one: the target's identifier
    and what differs between two uploads (ids, times, digests) are taken out."""
    text = raw.decode("utf-8", "replace")
    if ident:
        text = text.replace(ident, "<target>")
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if operation == "POST /api/imports" and isinstance(body, dict) and "rows" in body:
        return [(r.get("outcome"), r.get("errors"), r.get("note")) for r in body.get("rows", [])]
    return body


def _sides(sides: tuple[str, ...] | None, p: Principal) -> tuple[str, ...]:
    """The targets a caller is tried on. In and out of department A differ only for a caller
    of department A, who is also tried on a missing target to compare the answers; for a
    company-wide caller both departments are in scope, and a caller without grants sees
    neither, so one target (A's) says all."""
    if sides is None:
        return ("in",)
    return sides if p.scoped else ("in",)


def _run(d: Data, operation: str, entry: Entry, clients: dict[str, Client]) -> list[Outcome]:
    method, template = operation.split(" ", 1)
    template = template.split(" (")[0]
    outcomes = []
    for p in d.principals:
        answers: dict[str, tuple[int, bytes, str]] = {}
        for side in _sides(entry.sides, p):
            call = entry.build(d, p, side)
            status, body, extra = _send(_client(p, clients), method, template, call)
            success = 200 <= status < 300 or status in entry.got_through
            if 200 <= status < 300 and entry.succeeded is not None:
                success = entry.succeeded(json.loads(body))
            expected = entry.allowed(d, p, side)
            outcomes.append(
                Outcome(operation, p.name, side, status, success, expected, body + extra)
            )
            answers[side] = (status, body, call.ident)
            if entry.listing and p.scoped and success:
                text = _readable(body + b"\n" + extra)
                leaked = sorted(n for n in d.out_numbers if n in text)
                assert not leaked, f"{operation} as {p.name} names {leaked[:5]}"
        compare = entry.like_missing(p) if callable(entry.like_missing) else entry.like_missing
        if entry.sides is not None and compare and p.scoped:
            out, missing = answers["out"], answers["missing"]
            assert out[0] == missing[0], (
                f"{operation} as {p.name}: out of scope answers {out[0]}, missing {missing[0]}"
            )
            assert _normalised(out[1], out[2], operation) == _normalised(
                missing[1], missing[2], operation
            ), f"{operation} as {p.name}: {out[1][:300]!r} differs from {missing[1][:300]!r}"
    return outcomes


def _report(title: str, outcomes: list[Outcome], operations: int, principals: int) -> str:
    unexpected = [o for o in outcomes if o.success and not o.expected]
    refused = [o for o in outcomes if o.expected and not o.success]
    return (
        f"{title}: {operations} operations × {principals} principals → {len(outcomes)} calls, "
        f"{sum(o.success for o in outcomes)} successes, "
        f"{sum(not o.success for o in outcomes)} refusals; "
        f"unexpected successes {len(unexpected)}, unexpected refusals {len(refused)}"
    )


def _describe(outcomes: list[Outcome]) -> list[str]:
    return [
        f"{o.operation} as {o.principal} ({o.side}): {o.status} {o.body[:160]!r}" for o in outcomes
    ]


def test_every_api_operation_has_an_entry(
    operations: list[tuple[str, str]], db: None, matrix_settings: None
) -> None:
    names = {f"{m} {p}" for m, p in operations}
    assert len(names) == len(operations) > 40
    assert names - set(EXPECTED) == set(), "operations without an entry in EXPECTED"
    assert set(EXPECTED) - names == set(), "entries for operations that no longer exist"


def test_api_authorisation_matrix(
    data: Data,
    operations: list[tuple[str, str]],
    db: None,
    matrix_settings: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clients: dict[str, Client] = {}
    outcomes: list[Outcome] = []
    seconds: dict[str, float] = {}
    for method, path in operations:
        name = f"{method} {path}"
        if name not in EXPECTED:
            continue  # reported by test_every_api_operation_has_an_entry
        started = time.monotonic()
        outcomes += _run(data, name, EXPECTED[name], clients)
        seconds[name] = time.monotonic() - started
    for label, (_op, entry) in VARIANTS.items():
        outcomes += _run(data, label, entry, clients)
    summary = _report("API matrix", outcomes, len(operations) + len(VARIANTS), len(data.principals))
    slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:3]
    summary += "; slowest: " + ", ".join(f"{name} {s:.1f}s" for name, s in slowest)
    with capsys.disabled():
        print("\n" + summary)
    unexpected = [o for o in outcomes if o.success and not o.expected]
    assert _describe(unexpected) == []
    refused = [o for o in outcomes if o.expected and not o.success]
    assert _describe(refused) == []
    # Every operation succeeded for somebody: no entry passes by refusing everyone.
    succeeded = Counter(o.operation for o in outcomes if o.success)
    assert [o for o in {o.operation for o in outcomes} if not succeeded[o]] == []


# --- the workbench pages -------------------------------------------------------------------


@dataclass
class Page:
    url: Callable[[Data, str], str]
    allowed: Allowed
    method: str = "GET"
    form: Callable[[Data, str], dict[str, Any]] | None = None
    sides: tuple[str, ...] | None = SIDES
    listing: bool = False
    like_missing: Callable[[Principal], bool] = lambda p: True


def _doc_pk(d: Data, side: str, kind: str = "ready") -> int:
    return (d.ready if kind == "ready" else d.closed)[side].pk if side != "missing" else MISSING_ID


def _viewer(perm: str) -> Allowed:
    return lambda d, p, s: s != "missing" and p.can(perm, s)


PAGES: dict[str, Page] = {
    "queue": Page(
        lambda d, s: reverse("web:queue", args=[PO]),
        # A tab only for a type the user may view: without a grant the page is missing (404).
        lambda d, p, s: "document.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "queue export": Page(
        lambda d, s: reverse("web:queue", args=[PO]) + "?format=csv",
        lambda d, p, s: "document.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "document": Page(
        lambda d, s: reverse("web:document", args=[_doc_pk(d, s)]), _viewer("document.view")
    ),
    "close page": Page(
        lambda d, s: reverse("web:close", args=[_doc_pk(d, s)]), _viewer("document.view")
    ),
    "reopen page": Page(
        lambda d, s: reverse("web:reopen", args=[_doc_pk(d, s, "closed")]),
        _viewer("document.view"),
    ),
    "request": Page(
        lambda d, s: reverse(
            "web:request", args=[d.request[s].pk if s != "missing" else MISSING_ID]
        ),
        _sees_request,
    ),
    "inbox": Page(
        lambda d, s: reverse("web:inbox"), lambda d, p, s: True, sides=None, listing=True
    ),
    "notifications": Page(
        lambda d, s: reverse("web:notifications"), lambda d, p, s: True, sides=None, listing=True
    ),
    "batch": Page(
        lambda d, s: reverse("web:batch", args=[d.batch[s].pk if s != "missing" else MISSING_ID]),
        _owner("batch_owner"),
        like_missing=lambda p: False,
    ),
    "batch progress": Page(
        lambda d, s: reverse(
            "web:batch_progress", args=[d.batch[s].pk if s != "missing" else MISSING_ID]
        ),
        _owner("batch_owner"),
        like_missing=lambda p: False,
    ),
    "batch results": Page(
        lambda d, s: reverse(
            "web:batch_csv", args=[d.batch[s].pk if s != "missing" else MISSING_ID]
        ),
        _owner("batch_owner"),
        like_missing=lambda p: False,
    ),
    "batch verification": Page(
        lambda d, s: reverse(
            "web:batch_verification", args=[d.batch[s].pk if s != "missing" else MISSING_ID]
        ),
        _verification_reader,
        like_missing=lambda p: "report.view" in p.perms,
    ),
    "audit log": Page(
        lambda d, s: reverse("web:audit"),
        lambda d, p, s: "audit.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "audit export": Page(
        lambda d, s: reverse("web:audit") + "?format=csv",
        lambda d, p, s: "audit.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "archive": Page(
        lambda d, s: reverse("web:archive"),
        lambda d, p, s: p.wide("audit.view"),
        sides=None,
        listing=True,
    ),
    "archive export": Page(
        lambda d, s: reverse("web:archive_export"),
        lambda d, p, s: p.wide("audit.view"),
        method="POST",
        form=lambda d, s: {"period": d.period},
        sides=None,
    ),
    "diagnostics": Page(
        lambda d, s: reverse("web:diagnostics"),
        lambda d, p, s: "report.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "diagnostic rows": Page(
        lambda d, s: reverse("web:diagnostic", args=["complete_but_open"]) + "?format=csv",
        lambda d, p, s: "report.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "reports": Page(
        lambda d, s: reverse("web:reports"),
        lambda d, p, s: "report.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "group view": Page(
        lambda d, s: reverse("web:group") + "?currency=CNY&rates=G",
        lambda d, p, s: "report.view" in p.perms,
        sides=None,
        listing=True,
    ),
    "webhook deliveries": Page(
        lambda d, s: reverse("web:config_webhooks") + f"?endpoint={d.webhook.pk}",
        lambda d, p, s: p.wide("access.manage"),
        sides=None,
        listing=True,
    ),
    "imports": Page(
        lambda d, s: reverse("web:imports"),
        lambda d, p, s: True,  # everyone's own imports (none without import.run)
        sides=None,
        listing=True,
    ),
    "import": Page(
        lambda d, s: reverse(
            "web:import", args=[d.imported[s].pk if s != "missing" else MISSING_ID]
        ),
        _owner("import_owner"),
        like_missing=lambda p: False,
    ),
}


PAGE_CONTROLS = ("nobody", "admin", "auditor")


def test_workbench_pages_matrix(
    data: Data, db: None, matrix_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes: list[Outcome] = []
    # The users of department A, with a user without grants and two company-wide ones to show
    # that the pages do answer where they should.
    people = [p for p in data.principals if p.scoped or p.name in PAGE_CONTROLS]
    clients = {}
    for p in people:
        assert p.user is not None
        clients[p.name] = Client()
        clients[p.name].force_login(p.user)
    for name, page in PAGES.items():
        for p in people:
            client = clients[p.name]
            answers: dict[str, tuple[int, bytes]] = {}
            for side in _sides(page.sides, p):
                with transaction.atomic():
                    url = page.url(data, side)
                    if page.method == "POST":
                        response = client.post(url, page.form(data, side) if page.form else {})
                    else:
                        response = client.get(url)
                    body = _body_of(response)
                    transaction.set_rollback(True)
                success = response.status_code == 200
                outcomes.append(
                    Outcome(
                        name,
                        p.name,
                        side,
                        response.status_code,
                        success,
                        page.allowed(data, p, side),
                        body,
                    )
                )
                answers[side] = (response.status_code, body)
                if page.listing and p.scoped and success:
                    text = _readable(body)
                    leaked = sorted(n for n in data.out_numbers if n in text)
                    assert not leaked, f"page {name} as {p.name} names {leaked[:5]}"
            if page.sides is not None and p.scoped and page.like_missing(p):
                out, missing = answers["out"], answers["missing"]
                assert out[0] == missing[0], f"page {name} as {p.name}: {out[0]} vs {missing[0]}"
                if out[0] == 404:
                    assert same_page(out[1]) == same_page(missing[1])
    summary = _report("Page matrix", outcomes, len(PAGES), len(people))
    with capsys.disabled():
        print("\n" + summary)
    unexpected = [o for o in outcomes if o.success and not o.expected]
    assert _describe(unexpected) == []
    refused = [o for o in outcomes if o.expected and not o.success]
    assert _describe(refused) == []
