"""The input helpers every interface uses (closeout.core.inputs), and the interfaces that do
not go through the API: the commands, the import and the services behind them."""

import io
from datetime import date
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from closeout.batches.imports import import_validate
from closeout.closing.models import ClosePolicy
from closeout.closing.queue import QueueFilter
from closeout.core.errors import InvalidInput
from closeout.core.inputs import (
    Column,
    check_fits,
    decimal_problem,
    fit_problem,
    is_digits,
    non_ascii_digit,
    parse_date,
    parse_decimal,
    parse_int,
)
from closeout.documents.models import BusinessEvent, Document, Line
from closeout.documents.services import LineInput, document_upsert
from tests.batches.test_imports import csv_bytes
from tests.factories import PO, Org, make_document, post, user_with_role

FOREIGN = ["١٢", "１２", "۱۲", "१२", "12５"]


@pytest.mark.parametrize("text", FOREIGN)
def test_digits_other_than_ascii_are_found_and_refused(text: str) -> None:
    assert int(text) > 0  # what Python would have taken
    assert non_ascii_digit(text) is not None and not is_digits(text)
    for parse in (parse_int, parse_decimal):
        with pytest.raises(InvalidInput, match="digits 0-9") as caught:
            parse(text, field="qty")  # type: ignore[operator]
        assert caught.value.details["field"] == "qty"
    assert "digits 0-9" in decimal_problem(text)
    with pytest.raises(InvalidInput, match="digits 0-9"):
        parse_date(f"2026-01-{text}", field="day")


def test_ascii_numbers_and_dates_still_parse() -> None:
    assert parse_int(" 42 ", field="n", minimum=0, maximum=100) == 42
    assert parse_decimal("-12.50", field="x") == Decimal("-12.50")
    assert parse_date("2026-03-01", field="d") == date(2026, 3, 1)
    assert is_digits("0123") and not is_digits("") and not is_digits("1.5")
    for bad in ("1e5", "NaN", "Infinity", "1,5", "", "--1"):
        assert decimal_problem(bad), bad
    with pytest.raises(InvalidInput, match=r"outside 0\.\.100"):
        parse_int("101", field="n", minimum=0, maximum=100)
    with pytest.raises(InvalidInput, match=r"outside 1900-01-01\.\.2999-12-31"):
        parse_date("0001-01-01", field="d")


AMOUNT = Column(20, 4)


def test_a_column_takes_what_fits_and_nothing_more() -> None:
    assert AMOUNT.largest == Decimal("9999999999999999.9999")
    assert fit_problem(AMOUNT.largest, AMOUNT) == ""
    assert fit_problem(-AMOUNT.largest, AMOUNT) == ""
    assert "16 digits before the decimal point" in fit_problem(Decimal("1E16"), AMOUNT)
    assert "4 decimal places" in fit_problem(Decimal("0.00001"), AMOUNT)
    assert fit_problem(Decimal("1.50000000"), AMOUNT) == ""  # trailing zeros are no places
    # A computed amount is rounded when stored: only its size counts.
    assert fit_problem(Decimal("0.00001"), AMOUNT, rounded=True) == ""
    assert fit_problem(Decimal("9999999999999999.99995"), AMOUNT, rounded=True)
    assert AMOUNT.pattern() == r"^-?[0-9]{1,16}(\.[0-9]{1,4})?$"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_what_fits_is_what_the_column_pattern_describes(value: Decimal) -> None:
    import re

    column = Column(12, 4)
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")  # trailing zeros are not decimal places
    fits = fit_problem(value, column) == ""
    assert fits == bool(re.fullmatch(column.pattern(), text))


def test_the_columns_checked_are_the_models_columns() -> None:
    from closeout.api import schemas
    from closeout.documents import services

    for model, name, column in [
        (Line, "planned_qty", services.QTY_COLUMN),
        (Line, "unit_price", services.PRICE_COLUMN),
        (Line, "planned_amount", services.AMOUNT_COLUMN),
        (Document, "exchange_rate", services.RATE_COLUMN),
        (Document, "total_amount", services.TOTAL_COLUMN),
        (Document, "total_amount_company", services.COMPANY_TOTAL_COLUMN),
    ]:
        field: Any = model._meta.get_field(name)
        assert (field.max_digits, field.decimal_places) == (
            column.max_digits,
            column.decimal_places,
        )
    for name in (
        "under_qty_pct",
        "over_qty_pct",
        "match_qty_pct",
        "amount_tolerance_pct",
        "budget_tolerance_pct",
        "amount_tolerance_abs",
        "write_off_amount",
        "variance_value_limit",
    ):
        field = ClosePolicy._meta.get_field(name)
        pattern = Column(field.max_digits, field.decimal_places).pattern(signed=False)
        documented = schemas.PolicyIn.model_json_schema()["properties"][name]["anyOf"][0]
        assert documented["pattern"] == pattern, name


def test_check_fits_names_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_fits(Decimal("1E20"), AMOUNT, field="amount")
    zh = caught.value.details.pop("message_zh")
    assert caught.value.details == {"field": "amount", "max_digits": 20, "decimal_places": 4}
    assert "16 digits before the decimal point" in caught.value.message
    # Issue 17: the field by its name in Chinese; details.field keeps the code.
    assert zh == "金额：100000000000000000000 整数部分超过 16 位(最大值为 9999999999999999.9999)"


def test_a_bad_date_reads_in_chinese_and_in_english() -> None:
    """Issue 17: the message is a msgid with params: English in `message` (the API, the logs),
    Chinese on a zh-hans page."""
    with pytest.raises(InvalidInput) as caught:
        parse_date("2026-02-30", field="close_date")
    assert caught.value.message == "close_date: '2026-02-30' is not a date (use YYYY-MM-DD)"
    assert (
        caught.value.details["message_zh"] == "结案日期：“2026-02-30”不是日期(请按 YYYY-MM-DD 填写)"
    )
    with translation.override("zh-hans"):
        assert caught.value.text() == caught.value.details["message_zh"]
    with pytest.raises(InvalidInput) as caught:
        parse_date("1800-01-01", field="close_date")
    with translation.override("zh-hans"):
        assert caught.value.text() == "结案日期：1800-01-01 超出范围 1900-01-01..2999-12-31"
    with pytest.raises(InvalidInput) as caught:
        parse_decimal("１２", field="qty")
    with translation.override("zh-hans"):
        assert caught.value.text() == "qty：“１２”含有数字“１”(U+FF11)；请用数字 0-9 书写"
    assert "write numbers with the digits 0-9" in caught.value.message


# --- the services behind the commands and the import -----------------------------------------


@pytest.mark.django_db
def test_the_document_service_refuses_numbers_its_columns_cannot_store(org: Org) -> None:
    def upsert(*lines: LineInput, rate: str = "1") -> Document:
        return document_upsert(
            actor=None,
            doc_type=PO,
            number="PO-SVC",
            org_unit=org.dept_a,
            document_date=date(2026, 1, 10),
            lines=list(lines),
            exchange_rate=Decimal(rate),
        )

    cases = [
        (LineInput(1, Decimal("9999999999999999"), Decimal("99999")), "planned_qty"),
        (LineInput(1, Decimal(1), Decimal("9999999999999999.9999")), "unit_price"),
        (LineInput(1, Decimal("0.00001"), Decimal(1)), "planned_qty"),
        (LineInput(1, Decimal(1), Decimal(1), planned_amount=Decimal("1E17")), "planned_amount"),
    ]
    for line, field in cases:
        with pytest.raises(InvalidInput) as caught:
            upsert(line)
        assert caught.value.details["field"] == field, caught.value
    with pytest.raises(InvalidInput) as caught:
        upsert(LineInput(1, Decimal(1), Decimal(1)), rate="9999999999999999")
    assert caught.value.details["field"] == "exchange_rate"
    big = Decimal("900000000000")
    with pytest.raises(InvalidInput) as caught:
        upsert(LineInput(1, big, Decimal(9000)), LineInput(2, big, Decimal(9000)))
    assert caught.value.details["field"] == "lines"
    assert not Document.objects.filter(number="PO-SVC").exists()


@pytest.mark.django_db
def test_events_that_would_overflow_a_line_measure_are_refused(org: Org) -> None:
    document = make_document(PO, org.dept_a, ((10, 5),))
    post(document, "receipt", 1, "9999999999999000")
    with pytest.raises(InvalidInput) as caught:
        post(document, "receipt", 1, "1000")  # 10^16: one digit more than the column holds
    assert caught.value.details["field"] == "quantity"
    with pytest.raises(InvalidInput, match="digits 0-9"):
        post(document, "receipt", 1, "١")
    assert BusinessEvent.objects.filter(document=document).count() == 1
    assert Line.objects.get(document=document).fulfilled_qty == Decimal("9999999999999000")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"number": 123}, "filter.number"),
        ({"close_states": 5}, "filter.close_states"),
        ({"close_states": ["open", "shut"]}, "filter.close_states[1]"),
        ({"verdict": {"a": 1}}, "filter.verdict"),
        ({"min_age_days": 999_999_999}, "filter.min_age_days"),
        ({"date_to": "9999-12-31"}, "filter.date_to"),
        ({"date_from": 20260101}, "filter.date_from"),
        ({"number": "a\x00"}, "filter.number"),
        ({"unknown": 1}, "filter.unknown"),
    ],
)
def test_a_saved_filter_is_checked_by_its_schema(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        QueueFilter.from_dict({"doc_type": PO, **data})
    assert caught.value.details["field"] == field


def test_a_saved_filter_keeps_its_meaning() -> None:
    f = QueueFilter.from_dict(
        {"doc_type": PO, "close_states": "open", "date_from": "2026-01-01", "min_age_days": 3}
    )
    assert f.close_states == ("open",) and f.date_from == date(2026, 1, 1) and f.min_age_days == 3
    assert QueueFilter.from_dict(f.as_dict()) == f


# --- commands ----------------------------------------------------------------------------------


def test_no_command_reads_whole_numbers_with_int() -> None:
    """int() reads "١٢" as 12: every whole-number argument uses core.cli.whole_number."""
    offenders = []
    for name, app in get_commands().items():
        if not app.startswith("closeout"):
            continue
        parser = load_command_class(app, name).create_parser("closeout", name)
        parsers = [parser]
        while parsers:
            current = parsers.pop()
            for action in current._actions:
                if action.type is int and action.dest != "verbosity":  # Django's 0-3
                    offenders.append(f"{name} {action.option_strings or action.dest}")
                choices = getattr(action, "choices", None)
                if isinstance(choices, dict):
                    parsers.extend(choices.values())
    assert offenders == []


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_commands_refuse_foreign_digits_and_mistyped_filters(org: Org) -> None:
    make_document(PO, org.dept_a, number="PO-CLI")
    user_with_role("cli-op", "operator", org.company)
    user_with_role("cli-erp", "integration", org.company)
    with pytest.raises(CommandError, match="not a whole number written with the digits 0-9"):
        run("batch", "status", "١")
    with pytest.raises(CommandError, match="digits 0-9"):
        run(
            "post_event",
            PO,
            "PO-CLI",
            "receipt",
            "--external-id",
            "x",
            "--line",
            "1",
            "--quantity",
            "１",
            "--as",
            "cli-erp",
        )
    with pytest.raises(CommandError, match=r"filter\.min_age_days"):
        run(
            "batch",
            "create",
            "close",
            PO,
            "--filter",
            '{"min_age_days": 999999999}',
            "--reason",
            "completed",
            "--as",
            "cli-op",
        )
    with pytest.raises(CommandError, match=r"filter\.number"):
        run(
            "batch",
            "create",
            "close",
            PO,
            "--filter",
            '{"number": "\\u0000"}',
            "--reason",
            "completed",
            "--as",
            "cli-op",
        )
    with pytest.raises(CommandError, match="--requests"):
        run("batch", "create", "approve", "--requests", "١", "--as", "cli-op")
    with pytest.raises(CommandError, match="digits 0-9"):
        run("report", "kpis", "--from", "２０２６-01-01", "--as", "cli-op")


@pytest.mark.django_db
def test_the_import_refuses_foreign_digits(org: Org) -> None:
    document = make_document(PO, org.dept_a)
    buyer = user_with_role("imp", "operator", org.dept_a)
    rows = [
        [PO, document.number, "١", "close", "completed", "", ""],
        [PO, document.number, "", "close", "completed", "", "２０２６-01-05"],
        [PO, document.number, "1-١", "close", "completed", "", ""],
    ]
    imported = import_validate(
        actor=buyer, upload=io.BytesIO(csv_bytes(rows)), file_name="digits.csv"
    )
    errors = {r["r"]: r["e"] for r in imported.report["rows"] if r["e"]}
    assert imported.valid_rows == 0
    assert errors[2][0][0] == "lines" and "digits 0-9" in errors[2][0][1]
    assert errors[3][0][0] == "close_date" and "digits 0-9" in errors[3][0][1]
    assert errors[4][0][0] == "lines"
