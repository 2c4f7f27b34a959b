"""Labels for codes shown to people (issue 17 §2): reason codes, close and batch outcomes,
severities, check results, measures and thresholds, and history details. A page never shows a
raw code where a person reads; these filters give the words in the page language."""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import template
from django.core.cache import cache
from django.db.models import F
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext, pgettext, pgettext_lazy

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise as StrOrPromise

from closeout.access.models import Role
from closeout.audit.models import AuditObject
from closeout.batches.messages import message_text, outcome_words
from closeout.batches.models import BatchAction
from closeout.batches.undo import is_undo_item, item_messages
from closeout.closing.models import ReasonCode
from closeout.closing.states import ACTION_LABELS, STATE_LABELS
from closeout.core.fields import FIELD_NAMES
from closeout.documents.models import CloseKind, DocType, EventKind
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
            # The group's name wins over a company's own (the last one in this order).
            for code, zh, en in ReasonCode.objects.order_by(
                F("company_id").desc(nulls_last=True)
            ).values_list("code", "label_zh", "label_en")
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


@register.filter
def outcome_label(code: Any) -> str:
    return outcome_words(str(code))


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


MEASURES: dict[str, "StrOrPromise"] = {
    "planned": pgettext_lazy("measure", "planned"),
    "fulfilled": pgettext_lazy("measure", "fulfilled"),
    "short_accepted_receiving": pgettext_lazy("measure", "short accepted by closing for receiving"),
    "short_accepted_shipping": pgettext_lazy("measure", "short accepted by closing for shipping"),
    "invoiced": pgettext_lazy("measure", "invoiced"),
    "fulfilled_value": pgettext_lazy("measure", "fulfilled value"),
    "invoiced_amount": pgettext_lazy("measure", "invoiced amount"),
    "settled": pgettext_lazy("measure", "settled"),
    "open_returns": pgettext_lazy("measure", "open returns"),
    "pending": pgettext_lazy("measure", "pending"),
    "quarantined": pgettext_lazy("measure", "quarantined"),
    "last_activity": pgettext_lazy("measure", "last activity"),
    "events": pgettext_lazy("measure", "events"),
    "quantity": pgettext_lazy("measure", "quantity"),
    "short_share": pgettext_lazy("measure", "short share"),
    "closes_today": pgettext_lazy("measure", "closes today"),
    "counted": pgettext_lazy("measure", "counted"),
    "booked": pgettext_lazy("measure", "booked"),
    "history": pgettext_lazy("measure", "history"),
    "median": pgettext_lazy("measure", "median"),
    "mad": pgettext_lazy("measure", "MAD"),
    "robust_z": pgettext_lazy("measure", "robust z"),
    "percentile": pgettext_lazy("measure", "percentile"),
    "days": pgettext_lazy("measure", "days"),
    "days_ago": pgettext_lazy("measure", "days ago"),
    "last_days_ago": pgettext_lazy("measure", "last, days ago"),
    "active_days": pgettext_lazy("measure", "active days"),
    "median_per_day": pgettext_lazy("measure", "median per day"),
    "window_days": pgettext_lazy("measure", "window days"),
    "kinds": pgettext_lazy("measure", "kinds"),
    "reason": pgettext_lazy("measure", "reason"),
    "change_pct": pgettext_lazy("measure", "change %"),
    "changed_lines": pgettext_lazy("measure", "changed lines"),
    "lines": pgettext_lazy("measure", "lines"),
    "value": pgettext_lazy("measure", "value"),
    "open_value": pgettext_lazy("measure", "open value"),
    "released_value": pgettext_lazy("measure", "released value"),
    "share": pgettext_lazy("measure", "share"),
}


def _measured_value(key: str, value: Any) -> str:
    """A measured or reference value; reason codes and event kinds in words."""
    if key == "reason" and isinstance(value, str):
        return reason_label(value.split(":", 1)[0])
    if key == "kinds" and isinstance(value, str):
        return "、".join(event_kind_label(k.strip()) for k in value.split(",")) if value else ""
    return _value(value)


def event_kind_label(code: str) -> str:

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
        f"{str(MEASURES[k]) if k in MEASURES else k} = {_measured_value(k, v)}"
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

FIELDS: dict[str, "StrOrPromise"] = {
    "from": pgettext_lazy("history field", "from"),
    "to": pgettext_lazy("history field", "to"),
    "action": pgettext_lazy("history field", "action"),
    "kind": pgettext_lazy("history field", "kind"),
    "close_date": pgettext_lazy("history field", "close date"),
    "lines": pgettext_lazy("history field", "lines"),
    "lines_closed": pgettext_lazy("history field", "lines closed"),
    "released_value": pgettext_lazy("history field", "released value"),
    "released_value_company": pgettext_lazy("history field", "released value (company currency)"),
    "released_qty": pgettext_lazy("history field", "released quantity"),
    "line": pgettext_lazy("history field", "line"),
    "remark": pgettext_lazy("history field", "remark"),
    "reason": pgettext_lazy("history field", "reason"),
    "currency": pgettext_lazy("history field", "currency"),
    "total_amount": pgettext_lazy("history field", "amount"),
    "request": pgettext_lazy("history field", "request"),
    "state": pgettext_lazy("history field", "state"),
    "decision": pgettext_lazy("history field", "decision"),
    "comment": pgettext_lazy("history field", "comment"),
    "format": pgettext_lazy("history field", "format"),
    "filter": pgettext_lazy("history field", "filter"),
    "changes": pgettext_lazy("history field", "changes"),
    "before": pgettext_lazy("history field", "before"),
    "after": pgettext_lazy("history field", "after"),
    "round": pgettext_lazy("history field", "round"),
    "route": pgettext_lazy("history field", "route"),
    "step": pgettext_lazy("history field", "step"),
    "exception": pgettext_lazy("history field", "exception"),
    "open_value": pgettext_lazy("history field", "open value"),
    "line_nos": pgettext_lazy("history field", "lines"),
    "error": pgettext_lazy("history field", "error"),
    "active": pgettext_lazy("history field", "active"),
    "valid_until": pgettext_lazy("history field", "valid until"),
    "expires_at": pgettext_lazy("history field", "expires at"),
    "username": pgettext_lazy("history field", "user name"),
    "user": pgettext_lazy("history field", "user"),
    "user_id": pgettext_lazy("history field", "user"),
    "url": pgettext_lazy("history field", "URL"),
    "total": pgettext_lazy("history field", "total"),
    "processed": pgettext_lazy("history field", "processed"),
    "succeeded": pgettext_lazy("history field", "succeeded"),
    "failed": pgettext_lazy("history field", "failed"),
    "skipped": pgettext_lazy("history field", "skipped"),
    "name": pgettext_lazy("history field", "name"),
    "file_name": pgettext_lazy("history field", "file name"),
    "events": pgettext_lazy("history field", "events"),
    "email": pgettext_lazy("history field", "e-mail"),
    "close_state": pgettext_lazy("history field", "close state"),
    "doc_type": pgettext_lazy("history field", "document type"),
    "selection": pgettext_lazy("history field", "selection"),
    "numbers": pgettext_lazy("history field", "numbers"),
    "superuser": pgettext_lazy("history field", "superuser"),
    "role": pgettext_lazy("history field", "role"),
    "org_unit": pgettext_lazy("history field", "organisation"),
    "permission": pgettext_lazy("history field", "permission"),
}


def field_label(key: str) -> str:
    """A stored key as a heading: its history word; else, in Chinese, the word the messages
    name that input field by (core.fields); else the key in words."""
    if key in FIELDS:
        return str(FIELDS[key])
    if key in FIELD_NAMES and not _english():
        return str(FIELD_NAMES[key])
    return key.replace("_", " ")


def _shown(value: Any) -> str:
    """One stored value as words: labelled codes, lists joined, nested records as k: v."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{field_label(str(k))}: {_shown(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_shown(v) for v in value)
    if isinstance(value, bool):
        return pgettext("boolean", "yes") if value else pgettext("boolean", "no")
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


BATCH_REPR = re.compile(r"batch #(?P<job>\d+) (?P<action>[a-z_]+) (?P<done>\d+/\d+)")


@register.filter
def object_repr_label(text: Any) -> str:
    """An audit event's object as stored ("purchase_order PO-1"), its type in words."""
    value = str(text or "")
    batch = BATCH_REPR.fullmatch(value)
    if batch is not None and batch["action"] in BatchAction.values:
        # A batch job as stored (str(BatchJob)): "batch #7 close 2/2".
        return pgettext("audit object", "batch #%(job)s %(action)s %(done)s") % {
            "job": batch["job"],
            "action": str(BatchAction(batch["action"]).label),
            "done": batch["done"],
        }
    head, sep, rest = value.partition(" ")
    label = doc_type_label(head)
    return f"{label} {rest}" if sep and label != head else value


def _kind_label(code: str) -> str:
    """A close kind (manual, auto) or an event kind in words."""

    if code in CloseKind.values:
        return str(CloseKind(code).label)
    return event_kind_label(code)


def _state_label(code: str) -> str:
    """A close state or close action code in words."""

    label = STATE_LABELS.get(code, ACTION_LABELS.get(code))  # type: ignore[call-overload]
    return str(label) if label is not None else code


@register.filter
def doc_type_label(code: Any) -> str:

    text = str(code or "")
    return str(DocType(text).label) if text in DocType.values else text


OBJECT_TYPES: dict[str, "StrOrPromise"] = {
    "document": pgettext_lazy("object type", "document"),
    "batch": pgettext_lazy("object type", "batch"),
    "request": pgettext_lazy("object type", "request"),
    "close_request": pgettext_lazy("object type", "request"),
    "audit_log": pgettext_lazy("object type", "audit log"),
    "import": pgettext_lazy("object type", "import"),
    "user": pgettext_lazy("object type", "user"),
    "grant": pgettext_lazy("object type", "grant"),
    "role": pgettext_lazy("object type", "role"),
    "policy": pgettext_lazy("object type", "policy"),
    "reason": pgettext_lazy("object type", "reason"),
    "partner": pgettext_lazy("object type", "partner"),
    "token": pgettext_lazy("object type", "token"),
    "webhook": pgettext_lazy("object type", "webhook"),
    "archive": pgettext_lazy("object type", "archive"),
    "diagnostics": pgettext_lazy("object type", "diagnostics"),
    "sweep": pgettext_lazy("object type", "sweep"),
}


@register.filter
def object_type_label(code: Any) -> str:

    text = str(code or "")
    if text in OBJECT_TYPES:
        return str(OBJECT_TYPES[text])
    # Any other object an event is about (an exchange rate, a company): its audit label.
    return str(AuditObject(text).label) if text in AuditObject.values else text


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


@register.filter
def problem_text(problem: dict[str, Any]) -> str:
    """A post-close verification problem in the page language (English where it was stored
    before its record was kept)."""
    record = problem.get("record")
    return message_text(record) if isinstance(record, dict) and record else problem["message"]


@register.filter
def problem_document(problem: dict[str, Any]) -> str:
    """What a verification problem is about (a document, an item, the audit chain)."""
    record = problem.get("document_record")
    if isinstance(record, dict) and record:
        return message_text(record)
    return str(problem.get("document", ""))


@register.filter
def chain_problem_text(verification: Any) -> str:
    """Why the audit chain did not verify, in the page language."""
    for problem in verification.problems or []:
        record = problem.get("document_record") or {}
        if isinstance(record, dict) and record.get("msgid") == "audit chain":
            return problem_text(problem)
    return str(verification.chain_problem)
