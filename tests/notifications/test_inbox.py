"""In-app notifications: inbox, unread count, mark read, preferences, language, message kinds."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from closeout.core.errors import InvalidInput, NotFound, PermissionDenied
from closeout.notifications.catalog import KINDS
from closeout.notifications.models import Notification, Preference
from closeout.notifications.selectors import inbox_for, unread_count
from closeout.notifications.services import (
    notification_mark_read,
    notify,
    preference_set,
    user_language,
)
from tests.notifications.conftest import make_user

pytestmark = pytest.mark.django_db

SUBMITTED: dict[str, Any] = {
    "request_id": 41,
    "document": "采购订单 PO-2024-0007",
    "action": "close",
    "requester": "wang",
    "reason": "供应商停产 supplier discontinued",
    "step": "主管 supervisor",
}

# A context for every kind, as the approvals, sweep and grant code will pass it.
CONTEXTS: dict[str, dict[str, Any]] = {
    "request_submitted": SUBMITTED,
    "request_approved": {**SUBMITTED, "approver": "li", "next_step": "财务 finance"},
    "request_rejected": {**SUBMITTED, "approver": "li", "comment": "数量不符"},
    "request_executed": {"request_id": 41, "document": "PO-7", "action": "reopen"},
    "request_withdrawn": {**SUBMITTED},
    "execution_refused": {
        "request_id": 41,
        "document": "PO-7",
        "action": "close",
        "rules": ["received_vs_invoiced 入库与开票不符", "unsettled 未结算"],
    },
    "auto_close_digest": {
        "counts": {"purchase_order": 120, "sales_order": 7},
        "run_id": 9,
        "examined": 300,
        "lines_closed": 410,
        "exception_queue": 12,
        "blocked": 3,
    },
    "grant_expiring": {
        "user": "zhao",
        "role": "finance",
        "org_unit": "HQ",
        "valid_until": datetime(2025, 3, 1, 2, 0, tzinfo=UTC),
    },
    "grant_expired": {
        "user": "zhao",
        "role": "finance",
        "org_unit": "HQ",
        "valid_until": datetime(2025, 3, 1, 2, 0, tzinfo=UTC),
    },
    "approval_overdue": {
        **SUBMITTED,
        "waiting_hours": Decimal("49.5"),
        "sla_hours": 48,
    },
    "alert_digest": {
        "alert": "stale",
        "count": 3,
        "by_type": {"purchase_order": 2, "sales_order": 1},
        "examples": ["purchase_order PO-1: no activity since 2025-01-02"],
    },
    "diagnostics_problems": {
        "run_id": 3,
        "problems": 5,
        "counts": {"po_quantities": 2, "negative_stock": 3},
    },
}


def test_every_kind_has_a_test_context() -> None:
    assert set(CONTEXTS) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_every_kind_renders_in_both_languages(kind: str) -> None:
    zh_user = make_user(f"zh-{kind}")
    en_user = make_user(f"en-{kind}")
    preference_set(actor=en_user, language="en")
    zh, en = notify(recipients=[zh_user, en_user], kind=kind, context=CONTEXTS[kind])
    for note in (zh, en):
        assert note.kind == kind
        assert note.title and note.body
        assert "{" not in note.title + note.body, "a placeholder was left unfilled"
        assert "\n" not in note.title
    assert zh.title != en.title
    assert _has_chinese(zh.title) and _has_chinese(zh.body)
    # The English text has no Chinese of its own, only what the context quotes.
    assert not _has_chinese(_without_context(en.title + en.body, CONTEXTS[kind]))


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _without_context(text: str, context: dict[str, Any]) -> str:
    for value in context.values():
        for part in value if isinstance(value, list) else [value]:
            text = text.replace(str(part), "")
    return text


def test_chinese_by_default_english_with_preference() -> None:
    chen = make_user("chen")
    smith = make_user("smith")
    preference_set(actor=smith, language="en")
    assert user_language(chen) == "zh-hans"
    assert user_language(smith) == "en"
    notes = notify(
        recipients=[chen, smith], kind="request_submitted", context=SUBMITTED, link="/requests/41/"
    )
    by_user = {n.user_id: n for n in notes}
    zh, en = by_user[chen.pk], by_user[smith.pk]
    assert zh.title == "待审批：采购订单 PO-2024-0007 的结案申请 #41"
    assert zh.body.startswith("wang 提交了 采购订单 PO-2024-0007 的结案申请（#41），")
    assert (
        "等待您在「主管 supervisor」节点审批。\n原因：供应商停产 supplier discontinued" in zh.body
    )
    assert en.title == "Approval needed: close request #41 for 采购订单 PO-2024-0007"
    assert en.body.startswith("wang asks to close 采购订单 PO-2024-0007 (request #41).")
    assert zh.link == en.link == "/requests/41/"
    assert zh.data["language"] == "zh-hans" and en.data["language"] == "en"
    assert zh.data["context"]["request_id"] == 41


def test_values_are_displayed_per_language() -> None:
    lee = make_user("lee")
    preference_set(actor=lee, language="en")
    executed = {"request_id": 5, "document": "PO-5", "action": "reopen"}
    (en,) = notify(recipients=[lee], kind="request_executed", context=executed)
    assert en.title == "PO-5 reopened"
    (zh,) = notify(recipients=[make_user("liu")], kind="request_executed", context=executed)
    assert zh.title == "PO-5 已反结案"
    refused = CONTEXTS["execution_refused"]
    (en,) = notify(recipients=[lee], kind="execution_refused", context=refused)
    assert "- received_vs_invoiced 入库与开票不符\n- unsettled 未结算" in en.body
    expiring = CONTEXTS["grant_expiring"]
    (zh,) = notify(recipients=[make_user("ma")], kind="grant_expiring", context=expiring)
    assert "2025-03-01 10:00" in zh.body  # shown in Asia/Shanghai time
    assert zh.data["context"]["valid_until"] == "2025-03-01T02:00:00+00:00"
    overdue = CONTEXTS["approval_overdue"]
    (en,) = notify(recipients=[lee], kind="approval_overdue", context=overdue)
    assert "has waited 49.5 hours" in en.body and "limit of 48 hours" in en.body


def test_digest_is_one_message_per_recipient_summarising_counts() -> None:
    finance = [make_user(f"fin{i}") for i in range(3)]
    preference_set(actor=finance[2], language="en")
    notes = notify(
        recipients=[*finance, finance[0]],  # a duplicate recipient gets one message
        kind="auto_close_digest",
        context=CONTEXTS["auto_close_digest"],
    )
    assert len(notes) == 3
    assert Notification.objects.filter(kind="auto_close_digest").count() == 3
    for user in finance:
        assert Notification.objects.filter(user=user).count() == 1
    zh = Notification.objects.get(user=finance[0])
    assert zh.title == "自动结案汇总：已结案 127 张单据"
    assert "- 采购订单: 120\n- 销售订单: 7" in zh.body
    assert "（运行 #9）" in zh.body and "检查 300 张" in zh.body and "阻断 3 张" in zh.body
    en = Notification.objects.get(user=finance[2])
    assert en.title == "Automatic close summary: 127 documents closed"
    assert "- purchase order: 120\n- sales order: 7" in en.body
    assert "12 need a manual decision" in en.body


def test_unknown_kind_missing_context_and_bad_action_are_errors() -> None:
    user = make_user("zhou")
    with pytest.raises(ValueError, match="unknown notification kind 'request_exploded'"):
        notify(recipients=[user], kind="request_exploded", context={})
    with pytest.raises(ValueError, match="needs context keys: requester, reason, step"):
        notify(
            recipients=[user],
            kind="request_submitted",
            context={"request_id": 1, "document": "PO-1", "action": "close"},
        )
    with pytest.raises(ValueError, match="'action' must be 'close' or 'reopen'"):
        notify(recipients=[user], kind="request_submitted", context={**SUBMITTED, "action": "x"})
    assert not Notification.objects.exists()


def test_inbox_newest_first_and_unread_count() -> None:
    sun = make_user("sun")
    other = make_user("other")
    first = notify(recipients=[sun, other], kind="request_submitted", context=SUBMITTED)[0]
    second = notify(
        recipients=[sun], kind="request_withdrawn", context=CONTEXTS["request_withdrawn"]
    )[0]
    assert list(inbox_for(sun)) == [second, first]
    assert unread_count(sun) == 2
    assert unread_count(other) == 1
    assert list(inbox_for(make_user("nobody"))) == []


def test_mark_read_some_then_all() -> None:
    sun = make_user("sun")
    notes = [
        notify(recipients=[sun], kind="request_submitted", context=SUBMITTED)[0] for _ in range(3)
    ]
    assert notification_mark_read(actor=sun, notification_ids=[notes[0].pk]) == 1
    assert unread_count(sun) == 2
    assert notification_mark_read(actor=sun, notification_ids=[notes[0].pk]) == 0  # already read
    assert notification_mark_read(actor=sun) == 2
    assert unread_count(sun) == 0
    assert all(n.read_at is not None for n in inbox_for(sun))


def test_a_user_can_only_mark_their_own() -> None:
    sun = make_user("sun")
    qian = make_user("qian")
    mine = notify(recipients=[sun], kind="request_submitted", context=SUBMITTED)[0]
    theirs = notify(recipients=[qian], kind="request_submitted", context=SUBMITTED)[0]
    with pytest.raises(NotFound, match=rf"notification {theirs.pk} is not in sun's inbox"):
        notification_mark_read(actor=sun, notification_ids=[mine.pk, theirs.pk])
    # Refused as a whole: not even the actor's own one was marked.
    assert unread_count(sun) == 1
    assert unread_count(qian) == 1
    assert notification_mark_read(actor=sun) == 1  # "all" means all of mine
    assert unread_count(qian) == 1


def test_mark_read_needs_an_active_user() -> None:
    gone = make_user("gone", is_active=False)
    with pytest.raises(PermissionDenied, match="marking notifications read needs"):
        notification_mark_read(actor=gone)


def test_preference_set_validates_and_updates() -> None:
    wu = make_user("wu")
    with pytest.raises(InvalidInput, match="notification language 'fr' is not supported"):
        preference_set(actor=wu, language="fr")
    assert not Preference.objects.filter(user=wu).exists()
    pref = preference_set(actor=wu, email_enabled=False)
    assert (pref.language, pref.email_enabled) == ("zh-hans", False)
    pref = preference_set(actor=wu, language="en")
    assert (pref.language, pref.email_enabled) == ("en", False)
    assert Preference.objects.filter(user=wu).count() == 1


def test_notify_rolls_back_with_the_callers_transaction() -> None:
    zheng = make_user("zheng")
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(recipients=[zheng], kind="request_submitted", context=SUBMITTED)
        raise RuntimeError("business step failed")
    assert unread_count(zheng) == 0


def test_inbox_queries_do_not_grow_with_size(django_assert_max_num_queries: Any) -> None:
    sun = make_user("sun")
    for _ in range(20):
        notify(recipients=[sun], kind="request_submitted", context=SUBMITTED)
    with django_assert_max_num_queries(2):
        titles = [n.title for n in inbox_for(sun)]
        count = unread_count(sun)
    assert len(titles) == count == 20


def test_a_link_too_long_to_store_is_an_error() -> None:
    with pytest.raises(ValueError, match="notification link is longer than 500 characters"):
        notify(
            recipients=[make_user("he")],
            kind="request_submitted",
            context=SUBMITTED,
            link="/requests/" + "9" * 500,
        )
    assert not Notification.objects.exists()
