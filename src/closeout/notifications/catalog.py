"""Message kinds: for each, the context keys it needs and a Chinese and an English title and body.

Templates use `str.format` placeholders. Context values are turned into display text per
language first (users → username, datetimes → local time, lists → one bullet per line,
dicts → one `label: value` line per key, `action` close/reopen → 结案/反结案). Derived keys:
`action_label` (结案 / close), `action_done` (已结案 / closed), `closed` (digest total) and a few
optional sentences. An unknown kind, a missing key or a bad `action` is a programming error:
`ValueError` at call time.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from closeout.core.notice_kinds import NoticeKind

ZH = "zh-hans"
EN = "en"
LANGUAGES = (ZH, EN)

Derive = Callable[[Mapping[str, Any], str], dict[str, str]]


@dataclass(frozen=True)
class MessageKind:
    code: NoticeKind
    required: tuple[str, ...]
    title: dict[str, str]
    body: dict[str, str]
    optional: dict[str, Any] = field(default_factory=dict)
    derive: Derive | None = None


_ACTION_LABEL = {
    ZH: {"close": "结案", "reopen": "反结案"},
    EN: {"close": "close", "reopen": "reopen"},
}
_ACTION_DONE = {
    ZH: {"close": "已结案", "reopen": "已反结案"},
    EN: {"close": "closed", "reopen": "reopened"},
}


# Labels of codes that apps above notifications define, registered when those apps start
# (documents: "doc_type", closing: "reason", alerts: "alert", reports: "diagnostic_check"):
# (code, lang) → label.
LabelOf = Callable[[str, str], str]
_LABELS: dict[str, LabelOf] = {}


def register_labels(kind: str, label_of: LabelOf) -> None:
    _LABELS[kind] = label_of


def label_for(kind: str, code: str, lang: str) -> str:
    """The label of `code` in `lang`; the code itself when nothing is registered for it."""
    label_of = _LABELS.get(kind)
    return label_of(code, lang) if label_of else code


def display(value: Any, lang: str) -> str:
    """Text for one context value in one language."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == ZH else ("yes" if value else "no")
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime):
        moment = timezone.localtime(value) if timezone.is_aware(value) else value
        return moment.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "\n".join(
            f"- {label_for('doc_type', str(k), lang)}: {display(v, lang)}" for k, v in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return "\n".join(f"- {display(v, lang)}" for v in items)
    if isinstance(value, models.Model) and hasattr(value, "get_username"):
        return str(value.get_username())
    return str(value)


def _action(context: Mapping[str, Any], lang: str) -> dict[str, str]:
    action = context["action"]
    if action not in _ACTION_LABEL[ZH]:
        raise ValueError(
            f"notification context 'action' must be 'close' or 'reopen', not {action!r}"
        )
    return {"action_label": _ACTION_LABEL[lang][action], "action_done": _ACTION_DONE[lang][action]}


def _approved(context: Mapping[str, Any], lang: str) -> dict[str, str]:
    derived = _action(context, lang)
    next_step = display(context.get("next_step"), lang)
    if next_step:
        derived["next_line"] = (
            f"下一审批节点：{next_step}。" if lang == ZH else f"Next step: {next_step}."
        )
    else:
        derived["next_line"] = "等待后续审批。" if lang == ZH else "Further approval follows."
    return derived


def _digest(context: Mapping[str, Any], lang: str) -> dict[str, str]:
    counts = context["counts"]
    if not isinstance(counts, Mapping):
        raise ValueError("notification context 'counts' must map document type to a number")
    run_id = context.get("run_id")
    if run_id in (None, ""):
        run_ref = ""
    else:
        run_ref = f"（运行 #{run_id}）" if lang == ZH else f" (run #{run_id})"
    empty = "- （无）" if lang == ZH else "- (none)"
    return {
        "closed": str(sum(int(n) for n in counts.values())),
        "run_ref": run_ref,
        "counts": display(counts, lang) if counts else empty,
    }


def _alert(context: Mapping[str, Any], lang: str) -> dict[str, str]:
    return {"alert_label": label_for("alert", str(context["alert"]), lang)}


def _diagnostics(context: Mapping[str, Any], lang: str) -> dict[str, str]:
    counts = context["counts"]
    if not isinstance(counts, Mapping):
        raise ValueError("notification context 'counts' must map check code to a number")
    lines = [f"- {label_for('diagnostic_check', code, lang)}: {n}" for code, n in counts.items()]
    return {"counts": "\n".join(lines)}


_REQUEST = ("request_id", "document", "action")

KINDS: dict[str, MessageKind] = {
    kind.code: kind
    for kind in [
        MessageKind(
            code=NoticeKind.REQUEST_SUBMITTED,
            required=(*_REQUEST, "requester", "reason", "step"),
            title={
                ZH: "待审批：{document} 的{action_label}申请 #{request_id}",
                EN: "Approval needed: {action_label} request #{request_id} for {document}",
            },
            body={
                ZH: "{requester} 提交了 {document} 的{action_label}申请（#{request_id}），"
                "等待您在「{step}」节点审批。\n原因：{reason}",
                EN: "{requester} asks to {action_label} {document} (request #{request_id}). "
                'It waits for your decision at step "{step}".\nReason: {reason}',
            },
            derive=_action,
        ),
        MessageKind(
            code=NoticeKind.REQUEST_APPROVED,
            required=(*_REQUEST, "approver", "step"),
            optional={"next_step": ""},
            title={
                ZH: "{document} 的{action_label}申请 #{request_id} 已通过「{step}」",
                EN: 'Approved at "{step}": {action_label} request #{request_id} for {document}',
            },
            body={
                ZH: "{approver} 在「{step}」节点同意了 {document} 的{action_label}申请"
                "（#{request_id}）。{next_line}",
                EN: "{approver} approved the request #{request_id} to {action_label} {document} "
                'at step "{step}". {next_line}',
            },
            derive=_approved,
        ),
        MessageKind(
            code=NoticeKind.REQUEST_REJECTED,
            required=(*_REQUEST, "approver", "step", "comment"),
            title={
                ZH: "已驳回：{document} 的{action_label}申请 #{request_id}",
                EN: "Rejected: {action_label} request #{request_id} for {document}",
            },
            body={
                ZH: "{approver} 在「{step}」节点驳回了 {document} 的{action_label}申请"
                "（#{request_id}）。\n意见：{comment}\n可以修改后重新提交，或撤回申请。",
                EN: "{approver} rejected the request #{request_id} to {action_label} {document} "
                'at step "{step}".\nComment: {comment}\n'
                "You can change and resubmit it, or withdraw it.",
            },
            derive=_action,
        ),
        MessageKind(
            code=NoticeKind.REQUEST_EXECUTED,
            required=_REQUEST,
            title={
                ZH: "{document} {action_done}",
                EN: "{document} {action_done}",
            },
            body={
                ZH: "{action_label}申请（#{request_id}）已审批通过并执行："
                "{document} {action_done}。",
                EN: "The request #{request_id} was approved and carried out: "
                "{document} is now {action_done}.",
            },
            derive=_action,
        ),
        MessageKind(
            code=NoticeKind.REQUEST_WITHDRAWN,
            required=(*_REQUEST, "requester"),
            title={
                ZH: "已撤回：{document} 的{action_label}申请 #{request_id}",
                EN: "Withdrawn: {action_label} request #{request_id} for {document}",
            },
            body={
                ZH: "{requester} 撤回了 {document} 的{action_label}申请（#{request_id}），"
                "无需再审批。",
                EN: "{requester} withdrew the request #{request_id} to {action_label} {document}; "
                "no decision is needed any more.",
            },
            derive=_action,
        ),
        MessageKind(
            code=NoticeKind.EXECUTION_REFUSED,
            required=(*_REQUEST, "rules"),
            title={
                ZH: "无法执行：{document} 的{action_label}申请 #{request_id}",
                EN: "Not carried out: {action_label} request #{request_id} for {document}",
            },
            body={
                ZH: "最后一步审批已同意，但 {document} 现在有阻断条件不满足，未能{action_label}：\n"
                "{rules}\n申请仍未完成：请处理后重新提交，或撤回申请。",
                EN: "The last approval was given, but {document} was not {action_done} "
                "because these blocking rules now fail:\n{rules}\n"
                "The request stays open: fix the data and resubmit, or withdraw it.",
            },
            derive=_action,
        ),
        MessageKind(
            code=NoticeKind.AUTO_CLOSE_DIGEST,
            required=("counts",),
            optional={
                "run_id": "",
                "examined": 0,
                "lines_closed": 0,
                "exception_queue": 0,
                "blocked": 0,
            },
            title={
                ZH: "自动结案汇总：已结案 {closed} 张单据",
                EN: "Automatic close summary: {closed} documents closed",
            },
            body={
                ZH: "自动结案已完成{run_ref}。按单据类型已结案：\n{counts}\n"
                "合计：检查 {examined} 张，结案 {closed} 张（{lines_closed} 行）；"
                "待人工处理（例外）{exception_queue} 张，阻断 {blocked} 张。",
                EN: "The automatic close has finished{run_ref}. Closed by document type:\n"
                "{counts}\nIn all: {examined} examined, {closed} closed ({lines_closed} lines); "
                "{exception_queue} need a manual decision (exception), {blocked} blocked.",
            },
            derive=_digest,
        ),
        MessageKind(
            code=NoticeKind.GRANT_EXPIRING,
            required=("user", "role", "org_unit", "valid_until"),
            title={
                ZH: "临时授权即将到期：{role} @ {org_unit}",
                EN: "Temporary grant ends soon: {role} @ {org_unit}",
            },
            body={
                ZH: "{user} 在 {org_unit} 的临时授权「{role}」将于 {valid_until} 到期。"
                "如仍需要，请联系管理员办理新的授权。",
                EN: '{user}\'s temporary grant of role "{role}" in {org_unit} ends at '
                "{valid_until}. Ask an administrator for a new grant if it is still needed.",
            },
        ),
        MessageKind(
            code=NoticeKind.GRANT_EXPIRED,
            required=("user", "role", "org_unit", "valid_until"),
            title={
                ZH: "临时授权已到期：{role} @ {org_unit}",
                EN: "Temporary grant ended: {role} @ {org_unit}",
            },
            body={
                ZH: "{user} 在 {org_unit} 的临时授权「{role}」已于 {valid_until} 到期失效。",
                EN: '{user}\'s temporary grant of role "{role}" in {org_unit} ended at '
                "{valid_until} and no longer works.",
            },
        ),
        MessageKind(
            code=NoticeKind.APPROVAL_OVERDUE,
            required=(*_REQUEST, "step", "waiting_hours", "sla_hours"),
            title={
                ZH: "审批超时：{document} 的{action_label}申请 #{request_id}",
                EN: "Overdue: {action_label} request #{request_id} for {document}",
            },
            body={
                ZH: "{document} 的{action_label}申请（#{request_id}）在「{step}」节点已等待 "
                "{waiting_hours} 小时，超过时限 {sla_hours} 小时，请尽快处理。",
                EN: "The request #{request_id} to {action_label} {document} has waited "
                '{waiting_hours} hours at step "{step}", longer than its limit of {sla_hours} '
                "hours. Please decide it soon.",
            },
            derive=_action,
        ),
        MessageKind(
            code=NoticeKind.ALERT_DIGEST,
            required=("alert", "count", "by_type", "examples"),
            title={
                ZH: "预警「{alert_label}」：{count} 项",
                EN: "Alert '{alert_label}': {count} items",
            },
            body={
                ZH: "预警「{alert_label}」发现 {count} 项。按类型：\n{by_type}\n示例：\n{examples}",
                EN: "The alert '{alert_label}' found {count} items. By type:\n{by_type}\n"
                "Examples:\n{examples}",
            },
            derive=_alert,
        ),
        MessageKind(
            code=NoticeKind.DIAGNOSTICS_PROBLEMS,
            required=("run_id", "problems", "counts"),
            title={
                ZH: "数据校验发现 {problems} 个问题（运行 #{run_id}）",
                EN: "Consistency checks found {problems} problems (run #{run_id})",
            },
            body={
                ZH: "定时数据校验（运行 #{run_id}）发现以下问题：\n{counts}\n"
                "请打开数据校验页面查看明细，并按每项的处理建议更正。",
                EN: "The scheduled consistency checks (run #{run_id}) found:\n{counts}\n"
                "Open the consistency checks page for the documents and what to do next.",
            },
            derive=_diagnostics,
        ),
    ]
}


def kind_for(code: str) -> MessageKind:
    try:
        return KINDS[code]
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise ValueError(f"unknown notification kind {code!r}; known kinds: {known}") from None


def check_context(kind: MessageKind, context: Mapping[str, Any]) -> None:
    """Raise ValueError naming every required key the context lacks."""
    missing = [key for key in kind.required if key not in context]
    if missing:
        raise ValueError(
            f"notification kind {kind.code!r} needs context keys: {', '.join(missing)}"
        )


def _chinese_words(texts: Mapping[str, str]) -> dict[str, str]:
    """A document ("purchase_order PO-1") and a reason code in the words of a Chinese reader."""
    words: dict[str, str] = {}
    doc_type, _, number = texts.get("document", "").partition(" ")
    if number and label_for("doc_type", doc_type, ZH) != doc_type:
        words["document"] = f"{label_for('doc_type', doc_type, ZH)} {number}"
    reason = texts.get("reason", "")
    if reason:
        words["reason"] = label_for("reason", reason, ZH)
    return words


def render(kind: MessageKind, context: Mapping[str, Any], lang: str) -> tuple[str, str]:
    """(title, body) of one message in one language."""
    if lang not in LANGUAGES:
        raise ValueError(f"notification language must be one of {', '.join(LANGUAGES)}")
    check_context(kind, context)
    values = {**kind.optional, **context}
    texts = {key: display(value, lang) for key, value in values.items()}
    if lang == ZH:
        texts.update(_chinese_words(texts))
    if kind.derive is not None:
        texts.update(kind.derive(values, lang))
    try:
        title = kind.title[lang].format_map(texts)
        body = kind.body[lang].format_map(texts)
    except KeyError as exc:  # a template names a key that neither context nor derive gives
        raise ValueError(f"notification kind {kind.code!r} template needs {exc}") from None
    # A title is one line (it is also the e-mail subject).
    return " ".join(title.split())[:300], body
