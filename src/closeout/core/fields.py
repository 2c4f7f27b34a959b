"""Input fields as people read them inside messages. An error names the field it refuses by its
code in `details["field"]` (integrations read it) and, inside the sentence, by its name: the
code itself in English (as the API, the CLI and the logs always said: "close_date: …"), its
gettext word in Chinese ("结案日期: …"). The words are gettext entries with the context
"field name" whose msgid is the code, so English needs no translation and every language
reads its own catalogue."""

from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy

FIELD_NAMES: dict[str, Promise] = {
    "amount": pgettext_lazy("field name", "amount"),
    "amount_tolerance_abs": pgettext_lazy("field name", "amount_tolerance_abs"),
    "amount_tolerance_pct": pgettext_lazy("field name", "amount_tolerance_pct"),
    "budget_tolerance_pct": pgettext_lazy("field name", "budget_tolerance_pct"),
    "close_date": pgettext_lazy("field name", "close_date"),
    "comment": pgettext_lazy("field name", "comment"),
    "currency": pgettext_lazy("field name", "currency"),
    "date_from": pgettext_lazy("field name", "date_from"),
    "date_to": pgettext_lazy("field name", "date_to"),
    "days": pgettext_lazy("field name", "days"),
    "exchange_rate": pgettext_lazy("field name", "exchange_rate"),
    "event": pgettext_lazy("field name", "event"),
    "fulfilled_qty": pgettext_lazy("field name", "fulfilled_qty"),
    "invoiced_qty": pgettext_lazy("field name", "invoiced_qty"),
    "invoiced_amount": pgettext_lazy("field name", "invoiced_amount"),
    "settled_amount": pgettext_lazy("field name", "settled_amount"),
    "file": pgettext_lazy("field name", "file"),
    "grace_days": pgettext_lazy("field name", "grace_days"),
    "line_nos": pgettext_lazy("field name", "line_nos"),
    "lines": pgettext_lazy("field name", "lines"),
    "match_qty_pct": pgettext_lazy("field name", "match_qty_pct"),
    "number": pgettext_lazy("field name", "number"),
    "numbers": pgettext_lazy("field name", "numbers"),
    "occurred_at": pgettext_lazy("field name", "occurred_at"),
    "over_qty_pct": pgettext_lazy("field name", "over_qty_pct"),
    "period": pgettext_lazy("field name", "period"),
    "planned_amount": pgettext_lazy("field name", "planned_amount"),
    "planned_qty": pgettext_lazy("field name", "planned_qty"),
    "quantity": pgettext_lazy("field name", "quantity"),
    "reason": pgettext_lazy("field name", "reason"),
    "reason_code": pgettext_lazy("field name", "reason_code"),
    "remark": pgettext_lazy("field name", "remark"),
    "sla_hours": pgettext_lazy("field name", "sla_hours"),
    "under_qty_pct": pgettext_lazy("field name", "under_qty_pct"),
    "unit_price": pgettext_lazy("field name", "unit_price"),
    "value": pgettext_lazy("field name", "value"),
    "variance_value_limit": pgettext_lazy("field name", "variance_value_limit"),
    "write_off_amount": pgettext_lazy("field name", "write_off_amount"),
}


def field_words(code: str) -> object:
    """A field as a message parameter: rendered in the language the message is read in (the
    code in English); a code without a name (a command-line option such as `--date`) as is."""
    return FIELD_NAMES.get(code, code)


__all__ = ["FIELD_NAMES", "field_words"]
