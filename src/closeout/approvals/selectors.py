"""Reads for approvals: which route applies, who may decide, what waits for whom."""

from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to, holds_company_wide, users_with_role
from closeout.access.services import user_has_perm
from closeout.approvals.models import (
    AccountingPeriod,
    ApprovalDecision,
    ApprovalRoute,
    CloseRequest,
    ExceptionCondition,
    RequestAction,
    RequestState,
)
from closeout.audit.models import AuditObject
from closeout.closing.close_preview import close_preview_for
from closeout.closing.selectors import Checklist
from closeout.documents.models import Document

User = get_user_model()


def period_is_closed(day: date | None, company_id: int | None = None) -> bool:
    """Whether `day` lies in a closed period of the company (or of every company); with no
    company, in any closed period."""
    if day is None:
        return False
    periods = AccountingPeriod.objects.filter(start__lte=day, end__gte=day, closed=True)
    if company_id is not None:
        periods = periods.filter(Q(company__isnull=True) | Q(company_id=company_id))
    return periods.exists()


def _in_band(value: Decimal, low: Decimal | None, high: Decimal | None) -> bool:
    return (low is None or value >= low) and (high is None or value < high)


def _covers(route: ApprovalRoute, document: Document) -> bool:
    return route.org_unit is None or document.org_unit.path.startswith(route.org_unit.path)


def active_routes(action: str) -> list[ApprovalRoute]:
    """The active routes of an action with their steps, in the order they are tried. Load once
    and pass to `route_choose` when deciding many documents (batches)."""
    return list(
        ApprovalRoute.objects.filter(active=True, action=action)
        .select_related("org_unit")
        .annotate(step_count=Count("steps"))
        .order_by("priority", "id")
    )


def route_choose(
    *,
    document: Document,
    action: str,
    exception: bool,
    open_value: Decimal,
    routes: list[ApprovalRoute] | None = None,
) -> ApprovalRoute | None:
    """The first active route (by priority) whose conditions all match; None: no approval."""
    candidates = [
        r
        for r in (active_routes(action) if routes is None else routes)
        if r.action == action
        and r.doc_type in ("", document.doc_type)
        and getattr(r, "step_count", 0) > 0
    ]
    if action == RequestAction.REOPEN and period_is_closed(
        document.close_date, document.company_id
    ):
        # The closed-period route wins whatever else applies; only its own type and
        # organisation scope limit it (one per company, say).
        for route in candidates:
            if route.for_closed_period and _covers(route, document):
                return route
    for route in candidates:
        if route.for_closed_period or not _covers(route, document):
            continue
        if route.condition == ExceptionCondition.EXCEPTION and not exception:
            continue
        if route.condition == ExceptionCondition.NORMAL and exception:
            continue
        if not _in_band(open_value, route.min_open_value, route.max_open_value):
            continue
        if not _in_band(document.total_amount_company, route.min_total, route.max_total):
            continue
        return route
    return None


def route_for_close(
    document: Document, *, checklist: Checklist, line_nos: list[int] | None
) -> ApprovalRoute | None:
    preview = close_preview_for(document, line_nos=line_nos)
    return route_choose(
        document=document,
        action=RequestAction.CLOSE,
        exception=bool(checklist.exceptions),
        open_value=preview.released_value_company,
    )


def route_for_reopen(document: Document) -> ApprovalRoute | None:
    return route_choose(
        document=document,
        action=RequestAction.REOPEN,
        exception=False,
        open_value=document.released_value_company,
    )


def approvers_for(request: CloseRequest) -> list[AbstractBaseUser]:
    """Users who may decide the request's current step (never the requester)."""
    step = request.step
    if step is None:
        return []
    document = request.document
    users = users_with_role(
        str(step["role"]), org_unit=document.org_unit, doc_type=document.doc_type
    )
    # Separation of duties: whoever decided another step of this request cannot decide this one.
    other_steps = set(
        ApprovalDecision.objects.filter(request_id=request.pk)
        .exclude(step_order=step["order"])
        .values_list("decider_id", flat=True)
    )
    return [u for u in users if u.pk != request.requester_id and u.pk not in other_steps]


def requests_waiting_for(user: AbstractBaseUser) -> list[CloseRequest]:
    """Pending requests whose current step this user may decide."""
    pending = CloseRequest.objects.filter(state=RequestState.PENDING).select_related(
        "document", "document__org_unit", "requester"
    )
    return [r for r in pending if any(u.pk == user.pk for u in approvers_for(r))]


def requests_of(user: AbstractBaseUser) -> QuerySet[CloseRequest]:
    return CloseRequest.objects.filter(requester_id=user.pk).select_related("document")


def request_visible_to(user: AbstractBaseUser, request: CloseRequest) -> bool:
    """Whether `user` may see the request at all: its requester, one who may decide it now, or
    one who may view its document. Everyone else is answered as if it did not exist."""

    document = request.document
    return (
        request.requester_id == user.pk
        or user_has_perm(
            user, Perm.DOCUMENT_VIEW, org_unit=document.org_unit, doc_type=document.doc_type
        )
        or any(u.pk == user.pk for u in approvers_for(request))
    )


def request_get_visible(user: AbstractBaseUser, request_id: int) -> CloseRequest | None:
    """The request with its document and people, or None when there is none or `user` may not
    see it (the caller answers both alike)."""
    found = (
        CloseRequest.objects.select_related("document", "document__org_unit", "requester", "route")
        .filter(pk=request_id)
        .first()
    )
    if found is None or not request_visible_to(user, found):
        return None
    return found


def audit_scope(viewer: AbstractBaseUser) -> Q:
    """A condition on AuditEvent: the events `viewer` may read with `audit.view`.

    A company-wide auditor reads every event. An auditor over part of the company reads the
    events about documents there (by the document's unit and type) and about close and reopen
    requests on those documents; configuration, access, batch, import, sweep, report and
    archive events describe the whole company (or name documents of any unit), so only
    company-wide auditors read them."""
    if holds_company_wide(viewer, Perm.AUDIT_VIEW):
        return Q()
    documents = Document.objects.filter(documents_visible_to(viewer, Perm.AUDIT_VIEW))
    document_ids = documents.annotate(key=Cast("pk", CharField())).values("key")
    request_ids = (
        CloseRequest.objects.filter(document__in=documents.values("pk"))
        .annotate(key=Cast("pk", CharField()))
        .values("key")
    )
    return Q(object_type=AuditObject.DOCUMENT, object_id__in=document_ids) | Q(
        object_type=AuditObject.CLOSE_REQUEST, object_id__in=request_ids
    )
