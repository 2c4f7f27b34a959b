"""Labels (issue 14): a code-defined label is one gettext msgid, rendered in the active
language; no label is written "中文 english" any more, and nothing splits one."""

import re

import pytest
from django.apps import apps
from django.utils import translation

from closeout.access.permissions import Perm
from closeout.audit.models import AuditAction, audit_action_words
from closeout.batches.import_columns import doc_type_aliases, doc_type_choice, norm
from closeout.core.doctypes import DocType, doc_type_label
from closeout.core.errors import bilingual_label
from closeout.documents.models import CloseState, Document, doc_type_words

BILINGUAL = re.compile(r"^[^\x00-\x7f]+ [A-Za-z]")


def test_no_model_label_is_written_in_both_languages() -> None:
    written: list[str] = []
    with translation.override("en"):
        for model in apps.get_models():
            if not model.__module__.startswith("closeout."):
                continue
            texts = [str(model._meta.verbose_name), str(model._meta.verbose_name_plural)]
            for field in model._meta.get_fields():
                texts.append(str(getattr(field, "verbose_name", "")))
                texts.extend(str(label) for _, label in getattr(field, "choices", None) or [])
            written.extend(f"{model.__name__}: {t}" for t in texts if BILINGUAL.match(t))
        written.extend(str(p.label) for p in Perm if BILINGUAL.match(str(p.label)))
    assert not written


@pytest.mark.parametrize(
    ("language", "state", "doc_type", "perm"),
    [
        ("zh-hans", "未结案", "采购订单", "权限管理"),
        ("en", "open", "purchase order", "manage access"),
    ],
)
def test_a_label_renders_in_the_active_language(
    language: str, state: str, doc_type: str, perm: str
) -> None:
    with translation.override(language):
        assert str(CloseState.OPEN.label) == state
        assert doc_type_label("purchase_order") == doc_type
        assert str(Perm.ACCESS_MANAGE.label) == perm
        field = Document._meta.get_field("close_state")
        assert str(field.verbose_name) == {"zh-hans": "结案状态", "en": "close state"}[language]


def test_one_english_word_with_two_chinese_meanings_has_a_context() -> None:
    from closeout.approvals.models import AccountingPeriod, RequestState
    from closeout.documents.models import EventStatus

    with translation.override("zh-hans"):
        assert str(CloseState.CLOSED.label) == "已结案"
        assert str(AccountingPeriod._meta.get_field("closed").verbose_name) == "已关账"
        assert str(RequestState.PENDING.label) == "审批中"
        assert str(EventStatus.PENDING.label) == "待确认"


def test_messages_carry_both_languages_of_a_label_whatever_the_active_one() -> None:
    for language in ("en", "zh-hans"):
        with translation.override(language):
            words = bilingual_label(CloseState.ON_HOLD.label)
            assert (words.en, words.zh) == ("on hold", "冻结")
            type_words = doc_type_words(DocType.SALES_ORDER)
            assert (type_words.en, type_words.zh) == ("sales_order", "销售订单")


def test_audit_actions_are_named_with_the_actions() -> None:
    with translation.override("zh-hans"):
        assert audit_action_words(AuditAction.DOCUMENT_CLOSED.label) == "整单结案"
    with translation.override("en"):
        assert audit_action_words(AuditAction.DOCUMENT_CLOSED.label) == "document closed"
    assert audit_action_words("no_such_action") == "no_such_action"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_import_file_names_a_type_in_either_language(language: str) -> None:
    with translation.override(language):
        # The template's list offers the Chinese name with the code, in any page language.
        assert doc_type_choice("purchase_order", DocType.PURCHASE_ORDER.label) == (
            "采购订单 purchase_order"
        )
        aliases = doc_type_aliases()
    for text in ("采购订单", "Purchase Order", "purchase_order", "采购订单 purchase_order"):
        assert aliases[norm(text)] == "purchase_order"
