"""Template helpers of the configuration pages: verdict, severity and type names."""

from typing import Any

from django import template
from django.utils.translation import gettext, gettext_lazy
from django_stubs_ext import StrOrPromise

from closeout.closing.models import Severity
from closeout.documents.models import DocType

register = template.Library()

VERDICT_LABELS: dict[str, StrOrPromise] = {
    "ready": gettext_lazy("ready to close"),
    "not_due": gettext_lazy("within grace days"),
    "warning": gettext_lazy("warning"),
    "exception": gettext_lazy("exception"),
    "blocked": gettext_lazy("blocked"),
}


@register.filter
def verdict_label(code: Any) -> str:
    return str(VERDICT_LABELS.get(str(code), code))


@register.filter
def severity_label(code: Any) -> str:
    """A severity in the page language; none (the rule passes or is off) as "passes"."""
    if code is None:
        return gettext("passes")
    return str(Severity(code).label) if code in Severity.values else str(code)


@register.filter
def doc_type_label(code: Any) -> str:
    return str(DocType(code).label) if code in DocType.values else str(code)
