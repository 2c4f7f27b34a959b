"""Close policies: which one applies to a document (the most specific organisation unit wins),
and changing one (`policy_update`, permission-checked and audited)."""

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, require_company_wide
from closeout.audit.changes import field_changes, field_values
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.closing.models import ClosePolicy, Severity
from closeout.closing.types import close_spec_for
from closeout.core.errors import InvalidInput, NotFound
from closeout.core.fields import field_words
from closeout.core.inputs import MAX_DAYS, Column, check_fits, check_range
from closeout.core.lookup import org_unit_by_code
from closeout.core.models import OrgUnit
from closeout.documents.models import doc_type_words
from closeout.documents.types import spec_for


def policy_for(
    doc_type: str, org_unit: OrgUnit | None, *, policies: list[ClosePolicy] | None = None
) -> ClosePolicy:
    """The policy of a document of the type in the unit: the most specific unit's, else the
    default; `policies` (the type's, read once for many documents) saves the read."""
    best: ClosePolicy | None = None
    if policies is None:
        policies = list(ClosePolicy.objects.filter(doc_type=doc_type).select_related("org_unit"))
    for policy in policies:
        if policy.org_unit is None:
            best = best or policy
        elif (
            org_unit is not None
            and org_unit.path.startswith(policy.org_unit.path)
            and (
                best is None
                or best.org_unit is None
                or len(policy.org_unit.path) > len(best.org_unit.path)
            )
        ):
            best = policy
    if best is None:
        raise NotFound(
            gettext_noop("no close policy for %(doc_type)s: create one in the admin"),
            params={"doc_type": doc_type_words(doc_type)},
        )
    return best


def policy_partitions(
    doc_type: str, policies: list[ClosePolicy] | None = None
) -> list[tuple[ClosePolicy, Q]]:
    """Each policy of a type with the documents it governs, as a filter on Document: its unit's
    subtree minus the subtrees of more specific policies (the default: everything else).
    `policies` (a what-if) replaces the stored ones."""
    if policies is None:
        policies = list(ClosePolicy.objects.filter(doc_type=doc_type).select_related("org_unit"))
    paths = [p.org_unit.path for p in policies if p.org_unit is not None]
    result: list[tuple[ClosePolicy, Q]] = []
    for policy in policies:
        own = policy.org_unit.path if policy.org_unit is not None else ""
        scope = Q(org_unit__path__startswith=own) if own else Q()
        for other in paths:
            if other != own and other.startswith(own):
                scope &= ~Q(org_unit__path__startswith=other)
        result.append((policy, scope))
    return result


# --- changes -------------------------------------------------------------------------------

_POLICY_FIELDS = (
    "under_qty_pct",
    "over_qty_pct",
    "match_qty_pct",
    "amount_tolerance_abs",
    "amount_tolerance_pct",
    "write_off_amount",
    "variance_value_limit",
    "budget_tolerance_pct",
    "grace_days",
    "auto_close_enabled",
    "return_reopens_dimension",
    "auto_close_dimensions",
    "direct_close_needs_approval",
    "rule_settings",
    "archive_after_days",
)


def _check_rule_settings(doc_type: str, settings: Any) -> None:
    if not isinstance(settings, dict):
        raise InvalidInput(
            gettext_noop("rule_settings must be an object"),
            params={},
            details={"field": "rule_settings"},
        )
    codes = {rule.code for rule in close_spec_for(doc_type).rules}
    for code, value in settings.items():
        where = f"rule_settings.{code}"
        if code not in codes:
            raise InvalidInput(
                gettext_noop("%(where)s: a %(doc_type)s has no rule '%(code)s'; rules: %(rules)s"),
                params={
                    "where": where,
                    "doc_type": doc_type_words(doc_type),
                    "code": code,
                    "rules": ", ".join(sorted(codes)),
                },
                details={"field": where},
            )
        if not isinstance(value, dict) or set(value) - {"enabled", "severity"}:
            raise InvalidInput(
                gettext_noop('%(where)s: expected {"enabled": true|false, "severity": "..."}'),
                params={"where": where},
                details={"field": where},
            )
        if "enabled" in value and not isinstance(value["enabled"], bool):
            raise InvalidInput(
                gettext_noop("%(where)s.enabled must be true or false"),
                params={"where": where},
                details={"field": where},
            )
        if "severity" in value and value["severity"] not in Severity.values:
            raise InvalidInput(
                gettext_noop("%(where)s.severity must be one of %(allowed)s"),
                params={"where": where, "allowed": ", ".join(Severity.values)},
                details={"field": where},
            )


def policy_change_check(
    *, actor: AbstractBaseUser, doc_type: str, org_unit: str = "", changes: dict[str, Any]
) -> OrgUnit | None:
    """Refuse a policy change the actor may not make or whose values are wrong; the unit."""
    spec_for(doc_type)
    unit = org_unit_by_code(org_unit) if org_unit else None
    if unit is None:
        # The default policy of a type applies in every unit.
        require_company_wide(actor, Perm.POLICY_MANAGE, what=f"the default {doc_type} policy")
    else:
        require(actor, Perm.POLICY_MANAGE, org_unit=unit, doc_type=doc_type, what="close policies")
    unknown = sorted(set(changes) - set(_POLICY_FIELDS))
    if unknown:
        raise InvalidInput(
            gettext_noop("unknown policy field '%(field)s'"),
            params={"field": unknown[0]},
            details={"field": unknown[0]},
        )
    if "rule_settings" in changes:
        _check_rule_settings(doc_type, changes["rule_settings"])
    for name, value in changes.items():
        if isinstance(value, Decimal) and value < 0:
            raise InvalidInput(
                gettext_noop("%(field)s must not be negative"),
                params={"field": field_words(name)},
                details={"field": name},
            )
        if isinstance(value, Decimal):
            check_fits(value, Column.of(ClosePolicy._meta.get_field(name)), field=name)  # type: ignore[arg-type]
        elif isinstance(value, int) and not isinstance(value, bool):
            check_range(value, field=name, minimum=0, maximum=MAX_DAYS)
    return unit


def policy_update(
    *, actor: AbstractBaseUser, doc_type: str, org_unit: str = "", changes: dict[str, Any]
) -> ClosePolicy:
    """Change a close policy (the default of a type, or one unit's); recorded with before and
    after values."""
    unit = policy_change_check(actor=actor, doc_type=doc_type, org_unit=org_unit, changes=changes)
    with transaction.atomic():
        policy = (
            ClosePolicy.objects.select_for_update(no_key=True)
            .filter(doc_type=doc_type, org_unit=unit)
            .first()
        )
        if policy is None:
            if unit is None:
                raise NotFound(
                    gettext_noop("no default close policy for %(doc_type)s"),
                    params={"doc_type": doc_type_words(doc_type)},
                )
            policy = ClosePolicy(doc_type=doc_type, org_unit=unit)
        before = field_values(policy, changes)
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.save()
        audit_record(
            actor=actor,
            action=AuditAction.POLICY_CHANGED,
            object_type=AuditObject.CLOSE_POLICY,
            object_id=policy.pk,
            object_repr=str(policy),
            data=field_changes(before, field_values(policy, changes), unchanged=True),
        )
    return policy


# --- reason codes --------------------------------------------------------------------------

_REASON_FIELDS = ("action", "label_zh", "label_en", "active")
REASON_CODE_MAX = 40
