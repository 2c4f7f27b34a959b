"""`closeout company list|create` and `gen-data --company`."""

import io

import pytest
from django.core.management import CommandError, call_command

from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.models import Company
from closeout.documents.models import Document

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_then_list_one_company_a_line_code_first() -> None:
    said = run("company", "create", "US01", "--name", "Seattle Inc.", "--currency", "USD")
    assert said.startswith("company US01 Seattle Inc. created (USD)")
    run("company", "create", "CN01", "--name", "上海公司", "--currency", "CNY")
    lines = run("company", "list").splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["CN01", "上海公司", "CNY"],
        ["US01", "Seattle Inc.", "USD"],
    ]
    assert AuditEvent.objects.filter(action=AuditAction.COMPANY_CREATED).count() == 2


def test_create_refuses_bad_input_and_taken_codes() -> None:
    run("company", "create", "US01", "--name", "Seattle Inc.", "--currency", "USD")
    for args, message in (
        (["US01", "--name", "Again", "--currency", "USD"], "already taken"),
        (["X1", "--name", "X", "--currency", "usd"], "3-letter code"),
        (["X2", "--name", "X", "--currency", "EUR", "--time-zone", "Mars/Base"], "time zone"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("company", "create", *args, stdout=io.StringIO())
    assert list(Company.objects.values_list("unit__code", flat=True)) == ["US01"]


def test_gen_data_per_company_numbers_do_not_clash() -> None:
    run("company", "create", "CN01", "--name", "上海公司", "--currency", "CNY")
    run("company", "create", "US01", "--name", "Seattle Inc.", "--currency", "USD")
    for code in ("CN01", "US01"):
        run("gen_data", "--documents", "3", "--lines-per-document", "2", "--company", code)
    numbers = {
        code: sorted(
            Document.objects.filter(company__unit__code=code).values_list("number", flat=True)
        )
        for code in ("CN01", "US01")
    }
    assert numbers["CN01"] == numbers["US01"] and len(numbers["CN01"]) == 3
    us = Document.objects.filter(company__unit__code="US01")
    assert {d.org_unit.code for d in us} == {"US01-GEN"}
    assert {d.currency for d in us} <= {"USD", "CNY"}
    assert us.filter(currency="USD", exchange_rate=1).exists()
