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
from closeout.batches.messages import stored_text
from closeout.core.labels import label_part
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
def lang_part(value: Any) -> str:
    """The half of a bilingual label ("未结案 open") in the page language."""
    return label_part(value, english=(get_language() or "").startswith("en"))


AUDIT_LABELS: dict[str, tuple[str, str]] = {
    "document_created": ("创建单据", "document created"),
    "document_updated": ("修改单据", "document updated"),
    "event_applied": ("业务过账", "event applied"),
    "event_pending": ("业务待确认", "event pending"),
    "event_confirmed": ("业务确认", "event confirmed"),
    "event_quarantined": ("业务隔离", "event quarantined"),
    "event_released_from_quarantine": ("隔离业务过账", "quarantined event applied"),
    "document_change_refused": ("拒绝修改", "change refused"),
    "partner_created": ("新增往来单位", "partner created"),
    "partner_updated": ("修改往来单位", "partner updated"),
    "document_closed": ("整单结案", "document closed"),
    "lines_closed": ("行结案", "lines closed"),
    "document_reopened": ("反结案", "document reopened"),
    "document_held": ("冻结", "document held"),
    "document_released": ("解冻", "document released"),
    "lines_held": ("行冻结", "lines held"),
    "lines_released": ("行解冻", "lines released"),
    "lines_reopened": ("行反结案", "lines reopened"),
    "line_dimensions_closed": ("关闭维度", "line dimension closed"),
    "line_dimensions_reopened": ("重开维度", "line dimension reopened"),
    "close_requested": ("提交结案申请", "close requested"),
    "close_request_ended": ("结案申请结束", "close request ended"),
    "reopen_requested": ("提交反结案申请", "reopen requested"),
    "reopen_request_ended": ("反结案申请结束", "reopen request ended"),
    "document_archived": ("最终结案", "document archived"),
    "sweep_run": ("自动结案运行", "sweep run"),
    "batch_started": ("批量开始", "batch started"),
    "batch_finished": ("批量完成", "batch finished"),
    "approval_decided": ("审批", "approval decided"),
    "execution_refused": ("执行被拒", "execution refused"),
    "attachment_added": ("添加附件", "attachment added"),
    "grant_created": ("授权", "grant created"),
    "grant_revoked": ("撤销授权", "grant revoked"),
    "grant_expired": ("授权到期", "grant expired"),
    "grant_extended": ("授权延期", "grant extended"),
    "role_changed": ("角色变更", "role changed"),
    "login_locked_out": ("登录锁定", "sign-in locked"),
    "user_created": ("创建用户", "user created"),
    "password_set": ("设置密码", "password set"),
    "policy_changed": ("策略变更", "policy changed"),
    "reason_changed": ("原因变更", "reason changed"),
    "route_changed": ("审批流变更", "approval route changed"),
    "period_changed": ("会计期间变更", "accounting period changed"),
    "alert_rule_changed": ("预警规则变更", "alert rule changed"),
    "archive_pack_exported": ("导出归档包", "archive pack exported"),
    "batch_failed": ("批量失败", "batch failed"),
    "import_validated": ("导入校验", "import validated"),
    "import_executed": ("导入执行", "import executed"),
    "diagnostics_run": ("运行诊断", "diagnostics run"),
    "post_close_verified": ("结案后核验", "post-close verified"),
    "token_created": ("创建令牌", "token created"),
    "token_revoked": ("撤销令牌", "token revoked"),
    "webhook_changed": ("Webhook 变更", "webhook changed"),
    "data_exported": ("导出数据", "data exported"),
    "backup_taken": ("备份", "backup taken"),
    "restore_done": ("恢复", "restore done"),
    "batch_undo_created": ("创建撤销批次", "batch undo created"),
    "company_created": ("创建公司", "company created"),
    "exchange_rate_set": ("设置汇率", "exchange rate set"),
}


@register.filter
def audit_label(code: Any) -> str:
    """An audit action (its code name) in the page language."""
    pair = AUDIT_LABELS.get(str(code))
    if pair is None:
        return str(code)
    return pair[1] if (get_language() or "").startswith("en") else pair[0]
