"""Approval routes (审批流) and their steps: saved through permission, separation of duties
(every step's role must hold the matching approve permission) and an audit event."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.models import Role
from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.approvals.models import (
    ApprovalRoute,
    ApprovalStep,
    ExceptionCondition,
    RequestAction,
)
from closeout.audit.changes import field_changes
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record, to_json_value
from closeout.core.doctypes import doc_type_codes
from closeout.core.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from closeout.core.inputs import check_range
from closeout.core.lookup import org_unit_by_code

# --- approval routes (审批流) ---------------------------------------------------------------


@dataclass(frozen=True)
class StepInput:
    name: str
    role: str
    sla_hours: int = 24


@dataclass(frozen=True)
class RouteInput:
    name: str
    action: str
    steps: list[StepInput]
    doc_type: str = ""
    org_unit: str = ""
    condition: str = ExceptionCondition.ANY
    min_open_value: Decimal | None = None
    max_open_value: Decimal | None = None
    for_closed_period: bool = False
    priority: int = 100
    active: bool = True


def _route_data(route: ApprovalRoute) -> dict[str, Any]:
    return {
        "name": route.name,
        "action": route.action,
        "doc_type": route.doc_type,
        "org_unit": route.org_unit.code if route.org_unit else "",
        "condition": route.condition,
        "min_open_value": to_json_value(route.min_open_value),
        "max_open_value": to_json_value(route.max_open_value),
        "for_closed_period": route.for_closed_period,
        "priority": route.priority,
        "active": route.active,
        "steps": [
            {"order": s.order, "name": s.name, "role": s.role.code, "sla_hours": s.sla_hours}
            for s in route.steps.select_related("role").order_by("order")
        ],
    }


def _route_steps_check(data: RouteInput) -> list[tuple[StepInput, Role]]:
    """Each step names a role that may decide this action (separation of duties: a route of
    roles that cannot approve would wait for ever)."""
    if not data.steps:
        raise InvalidInput(
            gettext_noop("route %(name)s: at least one step"),
            details={"field": "steps"},
            params={"name": data.name},
        )
    needed = Perm.CLOSE_APPROVE if data.action == RequestAction.CLOSE else Perm.REOPEN_APPROVE
    result = []
    for order, step in enumerate(data.steps, start=1):
        role = Role.objects.filter(code=step.role).first()
        where = f"route {data.name}, step {order}"
        if role is None:
            raise InvalidInput(
                gettext_noop("%(where)s: unknown role '%(role)s'"),
                details={"field": "steps"},
                params={"where": where, "role": step.role},
            )
        if str(needed) not in role.all_permissions():
            raise PermissionDenied(
                gettext_noop(
                    "%(where)s: role '%(role_code)s' lacks '%(needed)s' and could never decide"
                ),
                details={
                    "rule": "step_role_cannot_decide",
                    "field": "steps",
                    "message_zh": f"审批流 {data.name} 第 {order} 个节点：角色 {role.name_zh} "
                    "没有审批权限，无法审批。",
                },
                params={"where": where, "role_code": role.code, "needed": needed},
            )
        if not step.name.strip():
            raise InvalidInput(
                gettext_noop("%(where)s: the step needs a name"),
                details={"field": "steps"},
                params={"where": where},
            )
        check_range(step.sla_hours, field="sla_hours", minimum=1, maximum=24 * 365)
        result.append((step, role))
    return result


@transaction.atomic
def route_save(
    *, actor: AbstractBaseUser, data: RouteInput, route_id: int | None = None
) -> ApprovalRoute:
    """Create an approval route, or replace one's conditions and steps; requests already
    submitted keep the steps they copied."""
    require_company_wide(actor, Perm.POLICY_MANAGE, what="approval routes")
    if not data.name.strip():
        raise InvalidInput(
            gettext_noop("a route needs a name"), details={"field": "name"}, params={}
        )
    if data.action not in RequestAction.values:
        raise InvalidInput(
            gettext_noop("unknown route action '%(action)s'"),
            details={"field": "action"},
            params={"action": data.action},
        )
    if data.doc_type and data.doc_type not in doc_type_codes():
        raise InvalidInput(
            gettext_noop("unknown document type '%(doc_type)s'"),
            details={"field": "doc_type"},
            params={"doc_type": data.doc_type},
        )
    if data.condition not in ExceptionCondition.values:
        raise InvalidInput(
            gettext_noop("unknown condition '%(condition)s'"),
            details={"field": "condition"},
            params={"condition": data.condition},
        )
    unit = org_unit_by_code(data.org_unit) if data.org_unit else None
    steps = _route_steps_check(data)
    route = ApprovalRoute() if route_id is None else _route_locked(route_id)
    before = None if route_id is None else _route_data(route)
    route.name, route.action, route.doc_type = data.name.strip(), data.action, data.doc_type
    route.org_unit, route.condition = unit, data.condition
    route.min_open_value, route.max_open_value = data.min_open_value, data.max_open_value
    route.for_closed_period, route.priority, route.active = (
        data.for_closed_period,
        data.priority,
        data.active,
    )
    route.save()
    route.steps.all().delete()
    ApprovalStep.objects.bulk_create(
        ApprovalStep(route=route, order=i, name=s.name.strip(), role=role, sla_hours=s.sla_hours)
        for i, (s, role) in enumerate(steps, start=1)
    )
    route.refresh_from_db()
    after = _route_data(route)
    audit_record(
        actor=actor,
        action=AuditAction.ROUTE_CHANGED,
        object_type=AuditObject.APPROVAL_ROUTE,
        object_id=route.pk,
        object_repr=route.name,
        data=field_changes(before, after),
    )
    return route


def _route_locked(route_id: int) -> ApprovalRoute:
    route = ApprovalRoute.objects.select_for_update().filter(pk=route_id).first()
    if route is None:
        raise NotFound(
            gettext_noop("no approval route #%(route_id)s"), params={"route_id": route_id}
        )
    return route
