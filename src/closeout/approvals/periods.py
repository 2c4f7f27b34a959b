"""Accounting periods (会计期间): create one, close it (关账) and open it again; each change
through permission, separation of duties and an audit event with before and after."""

from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.approvals.models import (
    AccountingPeriod,
)
from closeout.audit.changes import field_changes, field_values
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.errors import (
    Bilingual,
    InvalidInput,
    NotFound,
)

# --- accounting periods (会计期间) -----------------------------------------------------------

PERIOD_NAME_MAX = 40


_PERIOD_FIELDS = ("name", "start", "end", "closed")


@transaction.atomic
def period_create(
    *, actor: AbstractBaseUser, name: str, start: date, end: date
) -> AccountingPeriod:
    """A new open accounting period; periods never overlap."""
    require_company_wide(actor, Perm.POLICY_MANAGE, what="accounting periods")
    name = name.strip()
    if not name or len(name) > PERIOD_NAME_MAX:
        raise InvalidInput(
            gettext_noop("a period needs a name of 1 to %(max)s characters"),
            details={"field": "name"},
            params={"max": PERIOD_NAME_MAX},
        )
    if end < start:
        raise InvalidInput(
            gettext_noop("period %(name)s: the end %(end)s is before the start %(start)s"),
            details={"field": "end", "message_zh": f"会计期间 {name}：结束日期早于开始日期。"},
            params={"name": name, "end": end, "start": start},
        )
    if AccountingPeriod.objects.filter(name=name).exists():
        raise InvalidInput(
            gettext_noop("a period named '%(name)s' exists"),
            details={"field": "name"},
            params={"name": name},
        )
    overlap = AccountingPeriod.objects.filter(start__lte=end, end__gte=start).first()
    if overlap is not None:
        raise InvalidInput(
            gettext_noop(
                "period %(name)s (%(start)s – %(end)s) overlaps period %(name2)s (%(start2)s – "
                "%(end2)s)"
            ),
            details={
                "field": "start",
                "message_zh": f"会计期间 {name} 与期间 {overlap.name} 重叠。",
            },
            params={
                "name": name,
                "start": start,
                "end": end,
                "name2": overlap.name,
                "start2": overlap.start,
                "end2": overlap.end,
            },
        )
    period = AccountingPeriod.objects.create(name=name, start=start, end=end)
    audit_record(
        actor=actor,
        action=AuditAction.PERIOD_CHANGED,
        object_type=AuditObject.ACCOUNTING_PERIOD,
        object_id=period.pk,
        object_repr=name,
        data=field_changes(None, field_values(period, _PERIOD_FIELDS)),
    )
    return period


@transaction.atomic
def period_set_closed(
    *, actor: AbstractBaseUser, period_id: int, closed: bool, reason: str = ""
) -> AccountingPeriod:
    """Close (关账) or open again an accounting period. Opening a closed period again needs a
    reason: closes dated in it are then allowed again."""
    require_company_wide(actor, Perm.POLICY_MANAGE, what="accounting periods")
    period = AccountingPeriod.objects.select_for_update().filter(pk=period_id).first()
    if period is None:
        raise NotFound(
            gettext_noop("no accounting period #%(period_id)s"), params={"period_id": period_id}
        )
    if period.closed == closed:
        state = "closed" if closed else "open"
        raise InvalidInput(
            gettext_noop("period %(name)s is already %(state)s"),
            details={"field": "closed"},
            params={"name": period.name, "state": Bilingual(state, "已关账" if closed else "开放")},
        )
    if not closed and not reason.strip():
        raise InvalidInput(
            gettext_noop("opening the closed period %(name)s again needs a reason"),
            details={"field": "reason", "message_zh": f"重新开账 {period.name} 需要填写原因。"},
            params={"name": period.name},
        )
    before = field_values(period, ["closed"])
    period.closed = closed
    period.save(update_fields=["closed"])
    audit_record(
        actor=actor,
        action=AuditAction.PERIOD_CHANGED,
        object_type=AuditObject.ACCOUNTING_PERIOD,
        object_id=period.pk,
        object_repr=period.name,
        data=field_changes(before, field_values(period, ["closed"])),
        reason=reason,
    )
    return period
