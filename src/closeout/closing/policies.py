"""Which close policy applies to a document: the most specific organisation unit wins."""

from django.db.models import Q

from closeout.closing.models import ClosePolicy
from closeout.core.errors import NotFound
from closeout.core.models import OrgUnit


def policy_for(doc_type: str, org_unit: OrgUnit | None) -> ClosePolicy:
    best: ClosePolicy | None = None
    for policy in ClosePolicy.objects.filter(doc_type=doc_type).select_related("org_unit"):
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
        raise NotFound(f"no close policy for {doc_type}: create one in the admin")
    return best


def policy_partitions(doc_type: str) -> list[tuple[ClosePolicy, Q]]:
    """Each policy of a type with the documents it governs, as a filter on Document: its unit's
    subtree minus the subtrees of more specific policies (the default: everything else)."""
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
