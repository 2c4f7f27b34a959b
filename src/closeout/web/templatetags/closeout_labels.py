"""Labels for codes shown to people (issue 17 §2): reason codes, close and batch outcomes,
severities, check results, measures and thresholds, and history details. A page never shows a
raw code where a person reads; these filters give the words in the page language."""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django import template
from django.core.cache import cache
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext, pgettext

from closeout.batches.messages import message_text
from closeout.batches.undo import is_undo_item, item_messages
from closeout.closing.models import ReasonCode
from closeout.web.templatetags.closeout_web import audit_label

register = template.Library()


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _pick(pair: tuple[str, str]) -> str:
    return pair[1] if _english() else pair[0]


REASONS_CACHE_KEY = "closeout:web:reason-labels"
REASONS_CACHE_SECONDS = 60


def _reason_names() -> dict[str, tuple[str, str]]:
    """Every reason code's (Chinese, English) name: one query a minute, not one per row."""
    names: dict[str, tuple[str, str]] | None = cache.get(REASONS_CACHE_KEY)
    if names is None:
        names = {
            code: (zh, en)
            for code, zh, en in ReasonCode.objects.values_list("code", "label_zh", "label_en")
        }
        cache.set(REASONS_CACHE_KEY, names, REASONS_CACHE_SECONDS)
    return names


@register.filter
def reason_label(code: Any) -> str:
    """A reason code as its name in the page language ("completed" → "正常完成")."""
    if not code:
        return ""
    names = _reason_names().get(str(code))
    return _pick(names) if names else _shown(code)


# Outcomes of a batch preview and of its items (BatchItem.predicted / outcome).
OUTCOMES: dict[str, Callable[[], str]] = {
    "would_close": lambda: pgettext("batch outcome", "would close"),
    "would_close_dim": lambda: pgettext("batch outcome", "would close the dimension"),
    "would_reopen": lambda: pgettext("batch outcome", "would reopen"),
    "would_approve": lambda: pgettext("batch outcome", "would approve"),
    "would_reject": lambda: pgettext("batch outcome", "would reject"),
    "would_request": lambda: pgettext("batch outcome", "would request"),
    "needs_approval": lambda: pgettext("batch outcome", "needs approval"),
    "needs_remark": lambda: pgettext("batch outcome", "needs a remark"),
    "refused": lambda: pgettext("batch outcome", "refused"),
    "skipped": lambda: pgettext("batch outcome", "skipped"),
    "closed": lambda: pgettext("batch outcome", "closed"),
    "close_dimension": lambda: pgettext("batch outcome", "dimension closed"),
    "reopened": lambda: pgettext("batch outcome", "reopened"),
    "requested": lambda: pgettext("batch outcome", "requested"),
    "approved": lambda: pgettext("batch outcome", "approved"),
    "rejected": lambda: pgettext("batch outcome", "rejected"),
    "executed": lambda: pgettext("batch outcome", "executed"),
    "pending": lambda: pgettext("batch outcome", "pending"),
    "done": lambda: pgettext("batch outcome", "done"),
    "failed": lambda: pgettext("batch outcome", "failed"),
    "error": lambda: pgettext("batch outcome", "error"),
    # A reopen, request, approve or reject batch records its action as the done outcome.
    "reopen": lambda: pgettext("batch outcome", "reopened"),
    "request": lambda: pgettext("batch outcome", "requested"),
    "approve": lambda: pgettext("batch outcome", "approved"),
    "reject": lambda: pgettext("batch outcome", "rejected"),
}


@register.filter
def outcome_label(code: Any) -> str:
    text = OUTCOMES.get(str(code))
    return text() if text else str(code)


SEVERITIES: dict[str, Callable[[], str]] = {
    "blocking": lambda: pgettext("severity", "blocking"),
    "exception": lambda: pgettext("severity", "exception"),
    "warning": lambda: pgettext("severity", "warning"),
    "risk": lambda: pgettext("severity", "risk"),
}


@register.filter
def literals_as_code(text: Any) -> str:
    """Help on a file's columns names values to type there (purchase_order, close): shown as
    code, the literal a person types, not as words of the sentence."""
    escaped = str(conditional_escape(text))
    return mark_safe(  # noqa: S308 (escaped above; only <code> added)
        re.sub(r"\b([a-z]+(?:[_ ][a-z]+)*)\b", r"<code>\1</code>", escaped)
    )


@register.filter
def role_label(code: Any) -> str:
    """A role code (supervisor) as its name in the page language (主管)."""
    from closeout.access.models import Role

    names = Role.objects.filter(code=str(code)).values_list("name_zh", "name_en").first()
    return _pick(names) if names else str(code)


@register.filter
def predicted_text(item: Any) -> str:
    """A batch item's preview message in the page language (stored in both at preview)."""
    if is_undo_item(item):
        return item_messages(item)[1]
    zh = (item.params or {}).get("predicted_message_zh") if not _english() else None
    return str(zh or item.predicted_message)


@register.filter
def result_text(item: Any) -> str:
    """A batch item's run message; a document skipped for its preview's refusal says that
    refusal in the page language."""
    if is_undo_item(item):
        return item_messages(item)[0]
    record = (item.params or {}).get("run_message")
    if isinstance(record, dict):
        return message_text(record)
    if item.message and item.message == item.predicted_message:
        return predicted_text(item)
    return str(item.message)


@register.filter
def severity_label(code: Any) -> str:
    text = SEVERITIES.get(str(code))
    return text() if text else str(code)


@register.filter
def result_label(passed: Any) -> str:
    """PASS / FAIL of a check, in words."""
    return pgettext("check result", "PASS") if passed else pgettext("check result", "FAIL")


MEASURES: dict[str, tuple[str, str]] = {
    "planned": ("计划", "planned"),
    "fulfilled": ("实收/实发", "fulfilled"),
    "short_accepted_receiving": ("收货关闭已接受的短交", "short accepted by closing for receiving"),
    "short_accepted_shipping": ("发货关闭已接受的短交", "short accepted by closing for shipping"),
    "invoiced": ("已开票", "invoiced"),
    "fulfilled_value": ("实收/实发金额", "fulfilled value"),
    "invoiced_amount": ("开票金额", "invoiced amount"),
    "settled": ("已结算", "settled"),
    "open_returns": ("未清退货", "open returns"),
    "pending": ("待确认", "pending"),
    "quarantined": ("已隔离", "quarantined"),
    "last_activity": ("最近业务", "last activity"),
    "events": ("业务数", "events"),
    "quantity": ("数量", "quantity"),
    "short_share": ("短交比例", "short share"),
    "closes_today": ("今日结案数", "closes today"),
    "counted": ("盘点数量", "counted"),
    "booked": ("账面数量", "booked"),
    "history": ("历史笔数", "history"),
    "median": ("中位数", "median"),
    "mad": ("绝对中位差", "MAD"),
    "robust_z": ("稳健 z 值", "robust z"),
    "percentile": ("百分位", "percentile"),
    "days": ("天数", "days"),
    "days_ago": ("距今天数", "days ago"),
    "last_days_ago": ("最近一次距今天数", "last, days ago"),
    "active_days": ("有结案的天数", "active days"),
    "median_per_day": ("每日中位数", "median per day"),
    "window_days": ("窗口天数", "window days"),
    "kinds": ("业务类型", "kinds"),
    "reason": ("原因", "reason"),
    "change_pct": ("变动比例 %", "change %"),
    "changed_lines": ("变动行", "changed lines"),
    "lines": ("行", "lines"),
    "value": ("金额", "value"),
    "open_value": ("未结金额", "open value"),
    "released_value": ("释放金额", "released value"),
    "share": ("比例", "share"),
}


def _measured_value(key: str, value: Any) -> str:
    """A measured or reference value; reason codes and event kinds in words."""
    if key == "reason" and isinstance(value, str):
        return reason_label(value.split(":", 1)[0])
    if key == "kinds" and isinstance(value, str):
        return "、".join(event_kind_label(k.strip()) for k in value.split(",")) if value else ""
    return _value(value)


def event_kind_label(code: str) -> str:
    from closeout.documents.models import EventKind

    return str(EventKind(code).label) if code in EventKind.values else code


def _value(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"
    return str(value)


@register.filter
def measures(values: dict[str, Any] | None) -> str:
    """Measured values as `name = value`, the names in the page language."""
    if not values:
        return ""
    return ", ".join(
        f"{_pick(MEASURES[k]) if k in MEASURES else k} = {_measured_value(k, v)}"
        for k, v in values.items()
    )


# Thresholds are written by the rule definitions in English; each form is said again in
# Chinese here (the page's words), with its numbers kept.
WHAT_ZH = {"received": "实收", "shipped": "实发", "counted": "盘点"}
THRESHOLDS_ZH: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(\w+) ≥ ([\d.]+)% of planned, per line$"), "{what} ≥ 计划的 {1}%（逐行）"),
    (re.compile(r"^(\w+) ≤ ([\d.]+)% of planned, per line$"), "{what} ≤ 计划的 {1}%（逐行）"),
    (re.compile(r"^\|invoiced − (\w+)\| ≤ ([\d.]+)%, per line$"), "|开票 − {what}| ≤ {1}%（逐行）"),
    (
        re.compile(r"^\|invoiced − (\w+) value\| ≤ max\(([\d.]+), ([\d.]+)%\), per line$"),
        "|开票金额 − {what}金额| ≤ max({1}, {2}%)（逐行）",
    ),
    (re.compile(r"^invoiced − settled ≤ ([\d.]+), per line$"), "开票 − 已结算 ≤ {0}（逐行）"),
    (re.compile(r"^open returns = 0$"), "未清退货 = 0"),
    (re.compile(r"^every line open$"), "每一行都未结案（无冻结、无审批中）"),
    (re.compile(r"^pending = 0 and quarantined = 0$"), "待确认 = 0 且 已隔离 = 0"),
    (re.compile(r"^no activity or reopen for (\d+) days$"), "{0} 天内无业务且无反结案"),
    # The risk warnings' thresholds (closing/risk.py).
    (
        re.compile(r"^z > ([\d.]+), excess ≥ (.+), history ≥ (\d+)$"),
        "z > {0}，超出 ≥ {1}，历史 ≥ {2} 笔",
    ),
    (re.compile(r"^events in the last (\d+) days = 0$"), "最近 {0} 天业务数 = 0"),
    (re.compile(r"^events > 0$"), "业务数 > 0"),
    (re.compile(r"^short share > 0$"), "短交比例 > 0"),
    (re.compile(r"^change > ([\d.]+)% in (\d+) days$"), "{1} 天内变动 > {0}%"),
    (
        re.compile(r"^> ([\d.]+)× median and ≥ median \+ ([\d.]+), active days ≥ (\d+)$"),
        "> {0} 倍中位数 且 ≥ 中位数 + {1}，有结案的天数 ≥ {2}",
    ),
]


@register.filter
def threshold_text(text: Any) -> str:
    value = str(text or "")
    if _english():
        return value
    for pattern, zh in THRESHOLDS_ZH:
        match = pattern.match(value)
        if match:
            groups = match.groups()
            what = WHAT_ZH.get(groups[0], groups[0]) if groups else ""
            return zh.format(*groups, what=what)
    return value


# --- history details: a before/after table instead of a Python dict ------------------------

FIELDS: dict[str, tuple[str, str]] = {
    "from": ("原状态", "from"),
    "to": ("新状态", "to"),
    "action": ("动作", "action"),
    "kind": ("方式", "kind"),
    "close_date": ("结案日期", "close date"),
    "lines": ("行", "lines"),
    "lines_closed": ("结案行数", "lines closed"),
    "released_value": ("释放金额", "released value"),
    "released_value_company": ("释放金额（本位币）", "released value (company currency)"),
    "released_qty": ("释放数量", "released quantity"),
    "line": ("行号", "line"),
    "remark": ("备注", "remark"),
    "reason": ("原因", "reason"),
    "currency": ("币种", "currency"),
    "total_amount": ("金额", "amount"),
    "request": ("申请", "request"),
    "state": ("状态", "state"),
    "decision": ("决定", "decision"),
    "comment": ("意见", "comment"),
    "format": ("格式", "format"),
    "filter": ("筛选", "filter"),
    "changes": ("变更", "changes"),
    "before": ("变更前", "before"),
    "after": ("变更后", "after"),
    "round": ("轮次", "round"),
    "route": ("审批流", "route"),
    "step": ("审批节点", "step"),
    "exception": ("例外", "exception"),
    "open_value": ("未结金额", "open value"),
    "line_nos": ("行", "lines"),
    "error": ("错误", "error"),
    "active": ("启用", "active"),
    "valid_until": ("有效期至", "valid until"),
    "expires_at": ("到期时间", "expires at"),
    "username": ("用户名", "user name"),
    "user": ("用户", "user"),
    "user_id": ("用户", "user"),
    "url": ("地址", "URL"),
    "total": ("总数", "total"),
    "processed": ("已处理", "processed"),
    "succeeded": ("成功", "succeeded"),
    "failed": ("失败", "failed"),
    "skipped": ("跳过", "skipped"),
    "name": ("名称", "name"),
    "file_name": ("文件名", "file name"),
    "events": ("业务数", "events"),
    "email": ("邮箱", "e-mail"),
    "close_state": ("结案状态", "close state"),
    "doc_type": ("单据类型", "document type"),
    "selection": ("选择", "selection"),
    "numbers": ("单据号", "numbers"),
    "superuser": ("超级用户", "superuser"),
    "role": ("角色", "role"),
    "org_unit": ("组织", "organisation"),
    "permission": ("权限", "permission"),
}


def field_label(key: str) -> str:
    return _pick(FIELDS[key]) if key in FIELDS else key.replace("_", " ")


def _shown(value: Any) -> str:
    """One stored value as words: labelled codes, lists joined, nested records as k: v."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{field_label(str(k))}: {_shown(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_shown(v) for v in value)
    if isinstance(value, bool):
        return _pick(("是", "yes") if value else ("否", "no"))
    text = str(value)
    for labelled in (
        _state_label(text),
        outcome_label(text),
        _kind_label(text),
        severity_label(text),
        doc_type_label(text),
    ):
        if labelled != text:
            return labelled
    return text


@register.filter
def object_repr_label(text: Any) -> str:
    """An audit event's object as stored ("purchase_order PO-1"), its type in words."""
    value = str(text or "")
    head, sep, rest = value.partition(" ")
    label = doc_type_label(head)
    return f"{label} {rest}" if sep and label != head else value


def _kind_label(code: str) -> str:
    """A close kind (manual, auto) or an event kind in words."""
    from closeout.documents.models import CloseKind

    if code in CloseKind.values:
        return str(CloseKind(code).label)
    return event_kind_label(code)


def _state_label(code: str) -> str:
    """A close state or close action code in words."""
    from closeout.closing.states import ACTION_LABELS, STATE_LABELS

    label = STATE_LABELS.get(code, ACTION_LABELS.get(code))  # type: ignore[call-overload]
    return str(label) if label is not None else code


@register.filter
def doc_type_label(code: Any) -> str:
    from closeout.documents.models import DocType

    text = str(code or "")
    return str(DocType(text).label) if text in DocType.values else text


OBJECT_TYPES: dict[str, tuple[str, str]] = {
    "document": ("单据", "document"),
    "batch": ("批量作业", "batch"),
    "request": ("申请", "request"),
    "close_request": ("申请", "request"),
    "audit_log": ("审计日志", "audit log"),
    "import": ("导入", "import"),
    "user": ("用户", "user"),
    "grant": ("授权", "grant"),
    "role": ("角色", "role"),
    "policy": ("策略", "policy"),
    "reason": ("原因", "reason"),
    "partner": ("往来单位", "partner"),
    "token": ("令牌", "token"),
    "webhook": ("Webhook", "webhook"),
    "archive": ("归档", "archive"),
    "diagnostics": ("诊断", "diagnostics"),
    "sweep": ("自动结案", "sweep"),
}


@register.filter
def object_type_label(code: Any) -> str:
    text = str(code or "")
    return _pick(OBJECT_TYPES[text]) if text in OBJECT_TYPES else text


@register.filter
def history_rows(data: Any) -> list[tuple[str, str, str]]:
    """(field, before, after) rows of an audit event's details: a change (`before`/`after`
    or `from`/`to`) becomes one row per field; any other value a row with only `after`."""
    if not isinstance(data, dict):
        return [] if data in (None, "") else [("", "", _shown(data))]
    rows: list[tuple[str, str, str]] = []
    before, after = data.get("before"), data.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        b, a = before or {}, after or {}
        rows.extend(
            (field_label(str(key)), _shown(b.get(key)), _shown(a.get(key)))
            for key in dict.fromkeys([*b, *a])
        )
    if "from" in data or "to" in data:
        rows.append((gettext("State"), _shown(data.get("from")), _shown(data.get("to"))))
    for key, value in data.items():
        if key in {"before", "after", "from", "to"}:
            continue
        rows.append((field_label(str(key)), "", _shown(value)))
    return rows


@register.filter
def code_label(code: Any) -> Any:
    """Any stored code a person may read (a document type, a state, an outcome, an audit
    action) in words; any other value (a number, a date, a name) as it is."""
    if not isinstance(code, str):
        return code
    for labelled in (
        doc_type_label(code),
        _state_label(code),
        outcome_label(code),
        audit_label(code),
    ):
        if labelled != code:
            return str(labelled)
    return code
