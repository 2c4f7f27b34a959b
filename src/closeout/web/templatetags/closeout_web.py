"""Template helpers of the workbench: the page header, progress percentages, labels."""

from decimal import Decimal
from typing import Any

from django import template
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils.translation import get_language

from closeout.access.permissions import Perm
from closeout.access.selectors import grants_of
from closeout.approvals.selectors import requests_waiting_for
from closeout.audit.models import audit_action_words
from closeout.batches.messages import stored_text
from closeout.notifications.selectors import unread_count

register = template.Library()


@register.inclusion_tag("web/_header.html", takes_context=True)
def workbench_header(context: template.Context) -> dict[str, Any]:
    request: HttpRequest | None = context.get("request")
    # The 500 page renders without a request: a header with no user and no menu.
    user = getattr(request, "user", None)
    data: dict[str, Any] = {"request": request, "user": user}
    if isinstance(user, AbstractBaseUser) and user.is_authenticated:
        english = (get_language() or "").startswith("en")
        grants = grants_of(user)
        data["roles"] = sorted({(g.role.name_en if english else g.role.name_zh) for g in grants})
        data["units"] = sorted({f"{g.org_unit.code} {g.org_unit.name}" for g in grants})
        data["unread"] = unread_count(user)
        perms = set().union(*(g.role.all_permissions() for g in grants)) if grants else set()
        # Only approvers can have requests waiting; skip the walk over pending requests.
        may_decide = bool(perms & {Perm.CLOSE_APPROVE, Perm.REOPEN_APPROVE})
        data["waiting"] = len(requests_waiting_for(user)) if may_decide else 0
        data["may_configure"] = bool(perms & {Perm.POLICY_MANAGE, Perm.ACCESS_MANAGE})
        data["menu"] = menu_for(user, perms)
    return data


def menu_for(user: AbstractBaseUser, perms: set[str]) -> dict[str, bool]:
    """The menu entries a user may open (the pages check again): no link that ends in a 403."""
    from closeout.access.selectors import holds_company_wide

    return {
        "audit": Perm.AUDIT_VIEW in perms,
        "imports": Perm.IMPORT_RUN in perms,
        "reports": Perm.REPORT_VIEW in perms,
        "diagnostics": Perm.REPORT_VIEW in perms,
        "archive": Perm.AUDIT_VIEW in perms and holds_company_wide(user, Perm.AUDIT_VIEW),
    }


@register.filter
def pct(part: Decimal | int | None, whole: Decimal | int | None) -> int:
    """Percentage for a progress bar, 0–100 (over-fulfilment shows full)."""
    if not whole or part is None:
        return 0
    return max(0, min(100, int(Decimal(part) * 100 / Decimal(whole))))


@register.filter
def label(rule: Any) -> str:
    """A rule's label in the page language."""
    return str(rule.label(get_language() or "zh"))


@register.filter
def hint(rule: Any) -> str:
    return str(rule.hint(get_language() or "zh"))


@register.filter
def pairs(values: dict[str, Any] | None) -> str:
    """Measured values as `name = value` text."""
    if not values:
        return ""
    return ", ".join(f"{k} = {v}" for k, v in values.items())


@register.filter
def amount(value: Any) -> str:
    """An amount as ERP users read it in either language: two decimals, thousands grouped
    with commas (1,234,500.00). Django's Chinese number format groups nothing."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (ArithmeticError, ValueError):
        return str(value)


@register.filter
def thousands(value: Any) -> str:
    """A whole number with thousands separators (1,234,567)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def job_error(job: Any) -> str:
    """A batch job's error in the page language (`job.error` is the English one)."""
    return stored_text(job.error, job.error_message)


@register.filter
def job_send_error(job: Any) -> str:
    """Why a batch job's tasks are not sent yet, in the page language."""
    return stored_text(job.send_error, job.send_error_message)


@register.filter
def audit_label(code: Any) -> str:
    """An audit action (its code name) in the page language."""
    return audit_action_words(str(code))
