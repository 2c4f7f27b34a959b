"""What each alert rule finds, computed set-based at the moment it is asked."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from closeout.access.models import Grant
from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to, holds_unit_wide
from closeout.alerts.models import AlertCode, AlertRule
from closeout.approvals.models import CloseRequest, RequestState
from closeout.closing.models import ClosePolicy
from closeout.closing.policies import policy_partitions
from closeout.closing.rules import grace_clock
from closeout.closing.selectors import verdict_condition, verdicts_for
from closeout.core.doctypes import doc_type_codes
from closeout.core.models import Company, OrgUnit
from closeout.documents.models import CloseState, Document

SAMPLE = 200


@dataclass(frozen=True)
class AlertItem:
    kind: str  # document, request or grant
    label: str
    doc_type: str
    why: str
    link: str
    # The document the item is about (a request's document); None for a grant.
    document_id: int | None = None
    # A grant's company (its unit's nearest company unit); None for documents and requests.
    company_id: int | None = None


def rule_scope(rule: AlertRule, field: str = "company_id") -> Q:
    """The documents a rule watches, as a filter (`field` leads to the document's company): a
    company's rule its company's; the group's every company's but those with their own rule
    of the same code."""
    if rule.company_id is not None:
        return Q(**{field: rule.company_id})
    own = AlertRule.objects.filter(code=rule.code, company__isnull=False)
    return ~Q(**{f"{field}__in": own.values("company_id")})


def _complete_but_open(rule: AlertRule, now: datetime) -> list[AlertItem]:
    """Open documents whose closing conditions are met (no blocking or exception rule fails)
    although their grace days ended `rule.days` days ago: why did the sweep not close them?"""
    items: list[AlertItem] = []
    for doc_type in doc_type_codes():
        for policy, scope in policy_partitions(doc_type):
            cutoff = now - timedelta(days=policy.grace_days + rule.days)
            complete = verdict_condition(doc_type, "ready") | verdict_condition(doc_type, "warning")
            docs = list(
                Document.objects.filter(doc_type=doc_type, close_state=CloseState.OPEN)
                .filter(scope, rule_scope(rule))
                .filter(complete)
                .annotate(last=grace_clock())
                .filter(last__lte=cutoff)
                .order_by("pk")[:SAMPLE]
            )
            verdicts = verdicts_for([d.pk for d in docs], doc_type=doc_type, for_auto=True)
            items.extend(
                AlertItem(
                    "document",
                    doc.label,
                    doc_type,
                    _why_not_auto(policy, verdicts[doc.pk].codes()),
                    f"/documents/{doc.pk}/",
                    doc.pk,
                )
                for doc in docs
            )
    return items


def _why_not_auto(policy: ClosePolicy, failing: list[str]) -> str:
    if not policy.auto_close_enabled:
        return "automatic close is off in the policy"
    if failing:
        return "rules that stop automatic close: " + ", ".join(failing)
    return "no sweep has run since it became closable"


def _overdue(rule: AlertRule, now: datetime) -> list[AlertItem]:
    """Open documents past their expected date whose business is not complete: some blocking
    or exception rule still fails (open quantity, unpaid balance, uncounted lines…)."""
    limit = timezone.localdate(now) - timedelta(days=rule.days)
    items: list[AlertItem] = []
    for doc_type in doc_type_codes():
        incomplete = verdict_condition(doc_type, "blocked") | verdict_condition(
            doc_type, "exception"
        )
        docs = (
            Document.objects.filter(
                doc_type=doc_type, close_state=CloseState.OPEN, expected_date__lt=limit
            )
            .filter(incomplete, rule_scope(rule))
            .order_by("expected_date")[:SAMPLE]
        )
        items.extend(
            AlertItem(
                "document",
                d.label,
                d.doc_type,
                f"expected by {d.expected_date}, business not complete",
                f"/documents/{d.pk}/",
                d.pk,
            )
            for d in docs
        )
    return items


def _stale(rule: AlertRule, now: datetime) -> list[AlertItem]:
    cutoff = now - timedelta(days=rule.days)
    docs = (
        Document.objects.filter(close_state__in=(CloseState.OPEN, CloseState.ON_HOLD))
        .annotate(last=Coalesce("last_activity_at", "created_at"))
        .filter(last__lte=cutoff)
        .filter(rule_scope(rule))
        .order_by("last")[:SAMPLE]
    )
    return [
        AlertItem(
            "document",
            d.label,
            d.doc_type,
            f"no activity since {timezone.localdate(d.last)}",
            f"/documents/{d.pk}/",
            d.pk,
        )
        for d in docs
    ]


def _approval_overdue(rule: AlertRule, now: datetime) -> list[AlertItem]:
    items = []
    for request in (
        CloseRequest.objects.filter(state=RequestState.PENDING)
        .filter(rule_scope(rule, "document__company_id"))
        .select_related("document")
        .order_by("step_started_at")
    ):
        step = request.step
        if step is None:
            continue
        due = request.step_started_at + timedelta(hours=int(step["sla_hours"]))
        if due <= now:
            hours = int((now - request.step_started_at).total_seconds() // 3600)
            items.append(
                AlertItem(
                    "request",
                    f"#{request.pk} {request.action} {request.document.label}",
                    request.document.doc_type,
                    f"step '{step['name']}' waiting {hours} h (SLA {step['sla_hours']} h)",
                    f"/requests/{request.pk}/",
                    request.document_id,
                )
            )
        if len(items) >= SAMPLE:
            break
    return items


def _grant_expiring(rule: AlertRule, now: datetime) -> list[AlertItem]:
    grants = (
        Grant.objects.filter(
            Q(valid_until__gt=now) & Q(valid_until__lte=now + timedelta(days=max(rule.days, 1))),
            revoked_at__isnull=True,
        )
        .filter(_grant_scope(rule))
        .select_related("user", "role", "org_unit")
        .order_by("valid_until")[:SAMPLE]
    )
    # Nearest company first: the longest company path that starts the grant's unit path.
    company_paths = sorted(
        Company.objects.values_list("unit__path", "unit_id"), key=lambda c: -len(c[0])
    )
    return [
        AlertItem(
            "grant",
            str(g),
            "",
            f"ends {timezone.localtime(g.valid_until):%Y-%m-%d %H:%M}",
            "/admin/access/grant/",
            company_id=next(
                (pk for path, pk in company_paths if g.org_unit.path.startswith(path)), None
            ),
        )
        for g in grants
    ]


def _grant_scope(rule: AlertRule) -> Q:
    """A company's rule watches the grants on its units (the group's, the others)."""

    own = AlertRule.objects.filter(code=rule.code, company__isnull=False)
    companies = Company.objects.select_related("unit")
    if rule.company_id is not None:
        unit = companies.get(pk=rule.company_id).unit
        return Q(org_unit__path__startswith=unit.path)
    scope = Q()
    for company in companies.filter(pk__in=own.values("company_id")):
        scope &= ~Q(org_unit__path__startswith=company.unit.path)
    return scope


_FINDERS = {
    AlertCode.COMPLETE_BUT_OPEN: _complete_but_open,
    AlertCode.OVERDUE: _overdue,
    AlertCode.STALE: _stale,
    AlertCode.APPROVAL_OVERDUE: _approval_overdue,
    AlertCode.GRANT_EXPIRING: _grant_expiring,
}


def alert_items_visible_to(user: AbstractBaseUser, items: list[AlertItem]) -> list[AlertItem]:
    """The items `user` may see: about documents they may view, and grants for an
    administrator (access.manage) of the grant's whole company."""

    ids = {i.document_id for i in items if i.document_id is not None}
    visible = documents_visible_to(user)
    seen = (
        set(ids)
        if visible == Q()
        else set(Document.objects.filter(visible, pk__in=ids).values_list("pk", flat=True))
    )
    grant_companies = {
        i.company_id for i in items if i.document_id is None and i.company_id is not None
    }
    managed = {
        unit.pk
        for unit in OrgUnit.objects.filter(pk__in=grant_companies)
        if holds_unit_wide(user, Perm.ACCESS_MANAGE, unit)
    }
    return [
        i
        for i in items
        if (i.document_id in seen if i.document_id is not None else i.company_id in managed)
    ]


def alert_items(rule: AlertRule, *, now: datetime | None = None) -> list[AlertItem]:
    """The list users open for one alert (at most SAMPLE rows per part)."""
    return _FINDERS[AlertCode(rule.code)](rule, now or timezone.now())
