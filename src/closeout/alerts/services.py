"""Running the alert rules: one stored result per rule and one digest per recipient, never one
message per document."""

from collections import Counter
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.models import Role
from closeout.access.permissions import Perm
from closeout.access.selectors import companies_managed, users_with_role
from closeout.access.services import require_company_wide, require_unit_wide
from closeout.alerts.models import AlertCode, AlertRule, AlertRun
from closeout.alerts.selectors import alert_items, alert_items_visible_to
from closeout.audit.changes import field_changes, field_values
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import InvalidInput
from closeout.core.inputs import MAX_DAYS, check_range
from closeout.core.models import Company
from closeout.core.notice_kinds import NoticeKind
from closeout.notifications.services import notify


def alerts_run(*, now: datetime | None = None) -> list[AlertRun]:
    moment = now or timezone.now()
    runs: list[AlertRun] = []
    for rule in AlertRule.objects.filter(active=True):
        items = alert_items(rule, now=moment)
        with transaction.atomic():
            run = AlertRun.objects.create(
                rule=rule,
                ran_at=moment,
                count=len(items),
                by_type=dict(Counter(i.doc_type or i.kind for i in items)),
                sample=[{"label": i.label, "why": i.why, "link": i.link} for i in items[:50]],
            )
            recipients = (
                users_with_role(rule.recipients_role, org_unit=None, doc_type=None) if items else []
            )
            for recipient in recipients:
                # Each recipient hears only of what they may see.
                mine = alert_items_visible_to(recipient, items)
                if not mine:
                    continue
                notify(
                    recipients=[recipient],
                    kind=NoticeKind.ALERT_DIGEST,
                    context={
                        "alert": rule.code,
                        "count": len(mine),
                        "by_type": dict(Counter(i.doc_type or i.kind for i in mine)),
                        "examples": [f"{i.label}: {i.why}" for i in mine[:10]],
                    },
                    link="/",
                )
        runs.append(run)
    return runs


_RULE_FIELDS = ("active", "days", "recipients_role")


def alert_rule_list(*, actor: AbstractBaseUser) -> list[AlertRule]:
    """The rules `actor` may see on the configuration page: the group's and those of the
    companies they manage (never another company's)."""
    _, managed = companies_managed(actor, str(Perm.POLICY_MANAGE))
    return list(
        AlertRule.objects.filter(Q(company__isnull=True) | Q(company__in=managed))
        .select_related("company__unit")
        .order_by("code", "company__unit__code")
    )


def alert_rule_save(
    *,
    actor: AbstractBaseUser,
    code: str,
    company: Company | None = None,
    active: bool = True,
    days: int = 0,
    recipients_role: str = "supervisor",
) -> AlertRule:
    """Create or change an alert rule (预警规则) of the group (`policy.manage` over every
    company) or of one company (over that company; it then replaces the group's rule of the
    same code for that company); audited with before and after values."""
    if company is None:
        require_company_wide(actor, Perm.POLICY_MANAGE, what="alert rules")
    else:
        require_unit_wide(actor, Perm.POLICY_MANAGE, company.unit, what="alert rules")
    if code not in AlertCode.values:
        raise InvalidInput(
            gettext_noop("unknown alert '%(code)s'; use one of: %(allowed)s"),
            params={"code": code[:60], "allowed": ", ".join(AlertCode.values)},
            details={"field": "code"},
        )
    check_range(days, field="days", minimum=0, maximum=MAX_DAYS)
    if not Role.objects.filter(code=recipients_role).exists():
        raise InvalidInput(
            gettext_noop("unknown role '%(role)s'"),
            params={"role": recipients_role[:60]},
            details={"field": "recipients_role"},
        )
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().filter(code=code, company=company).first()
        created = rule is None
        rule = rule or AlertRule(code=code, company=company)
        before = None if created else field_values(rule, _RULE_FIELDS)
        rule.active, rule.days, rule.recipients_role = active, days, recipients_role
        rule.save()
        data = field_changes(before, field_values(rule, _RULE_FIELDS))
        data["company"] = company.code if company is not None else None
        audit_record(
            actor=actor,
            action=AuditAction.ALERT_RULE_CHANGED,
            object_type=AuditObject.ALERT_RULE,
            object_id=rule.pk,
            object_repr=code if company is None else f"{company.code}/{code}",
            data=data,
        )
    return rule
