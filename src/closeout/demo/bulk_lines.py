"""The values of one generated line (`gen-data`, closeout.demo.bulk): the failure modes of each
document type and the measures that make a line pass, or fail in one of them, under the
policy's figures (in cents, so every value stays exact)."""

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from closeout.closing.models import ClosePolicy
from closeout.documents.models import DocType

# Failure modes per type; a failing document gets one of them, in a seeded random choice.
FAILURES: dict[str, tuple[str, ...]] = {
    DocType.PURCHASE_ORDER: (
        "short",
        "over",
        "unpaid",
        "invoice_mismatch",
        "not_invoiced",
        "in_grace",
    ),
    DocType.SALES_ORDER: ("short", "unpaid", "invoice_mismatch", "open_return", "in_grace"),
    DocType.STOCK_COUNT: ("not_counted", "variance_not_posted", "variance_over_limit"),
    DocType.RECEIVABLE: ("unpaid", "invoice_mismatch", "in_grace"),
    DocType.PAYABLE: ("unpaid", "invoice_mismatch", "in_grace"),
    DocType.PROJECT_STAGE: ("tasks_open", "no_acceptance", "in_grace"),
}


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class Limits:
    """Policy figures in cents, so every generated value stays exact."""

    grace_days: int
    write_off: int
    amount_abs: int
    variance_limit: int

    @classmethod
    def of(cls, policy: ClosePolicy) -> "Limits":
        def cents(value: Decimal) -> int:
            return int((value * 100).to_integral_value(rounding=ROUND_HALF_UP))

        return cls(
            grace_days=policy.grace_days,
            write_off=cents(policy.write_off_amount),
            amount_abs=cents(policy.amount_tolerance_abs),
            variance_limit=cents(policy.variance_value_limit),
        )


def _mismatch(value: int, limits: Limits) -> int:
    """An invoiced amount clearly off `value`: 30% or the absolute tolerance plus 5.00."""
    return value + max(value * 3 // 10, limits.amount_abs + 500)


def line_values(
    doc_type: str, rng: random.Random, failure: str | None, limits: Limits
) -> dict[str, Any]:
    """Measures of one line; `failure` is the way this line fails, None for a passing line."""
    qty = rng.randint(1, 500)
    price = rng.randint(200, 100_000)  # cents: 2.00 … 1000.00
    if doc_type in (DocType.PURCHASE_ORDER, DocType.SALES_ORDER):
        return _order_line(qty, price, failure, limits)
    if doc_type == DocType.STOCK_COUNT:
        return _count_line(qty, price, rng, failure, limits)
    if doc_type in (DocType.RECEIVABLE, DocType.PAYABLE):
        return _invoice_line(qty, price, failure, limits)
    return _stage_line(qty, price, rng, failure)


def _order_line(qty: int, price: int, failure: str | None, limits: Limits) -> dict[str, Any]:
    """A purchase or sales order line: received (shipped), invoiced and settled."""
    done = qty
    returns = 0
    if failure == "short":
        done = qty // 2
    elif failure == "over":
        done = qty + qty // 2 + 1
    elif failure == "open_return":
        returns = 1
    value = done * price
    invoiced_qty, invoiced = done, value
    if failure == "invoice_mismatch":
        invoiced = _mismatch(value, limits)
    elif failure == "not_invoiced":
        invoiced_qty, invoiced = 0, 0
    settled = 0 if failure in ("unpaid", "not_invoiced") else invoiced
    if failure == "unpaid" and invoiced <= limits.amount_abs:
        qty = done = invoiced_qty = qty + limits.amount_abs // price + 1
        invoiced = done * price
    return {
        "planned_qty": qty,
        "unit_price": _money(price),
        "planned_amount": _money(qty * price),
        "fulfilled_qty": done,
        "returns_open_qty": returns,
        "invoiced_qty": invoiced_qty,
        "invoiced_amount": _money(invoiced),
        "settled_amount": _money(settled),
    }


def _count_line(
    qty: int, price: int, rng: random.Random, failure: str | None, limits: Limits
) -> dict[str, Any]:
    """A stock count line: counted, and its variance adjusted."""
    counted: int | None = qty
    adjusted = 0
    if failure is None and price <= limits.variance_limit and rng.random() < 0.3:
        counted, adjusted = qty + 1, 1  # a small variance, posted, within the limit
    elif failure == "not_counted":
        counted = None
    elif failure == "variance_not_posted":
        counted = qty + 3
    elif failure == "variance_over_limit":
        variance = limits.variance_limit // price + 1
        counted, adjusted = qty + variance, variance
    return {
        "planned_qty": qty,
        "unit_price": _money(price),
        "planned_amount": _money(qty * price),
        "counted_qty": counted,
        "adjusted_qty": adjusted,
    }


def _invoice_line(qty: int, price: int, failure: str | None, limits: Limits) -> dict[str, Any]:
    """A receivable or payable line: invoiced and settled."""
    if failure == "unpaid" and qty * price <= limits.write_off + 100:
        qty += (limits.write_off + 100) // price + 1
    amount = qty * price
    invoiced = _mismatch(amount, limits) if failure == "invoice_mismatch" else amount
    settled = 0 if failure == "unpaid" else invoiced
    return {
        "planned_qty": qty,
        "unit_price": _money(price),
        "planned_amount": _money(amount),
        "invoiced_qty": qty,
        "invoiced_amount": _money(invoiced),
        "settled_amount": _money(settled),
    }


def _stage_line(qty: int, price: int, rng: random.Random, failure: str | None) -> dict[str, Any]:
    """A project stage: tasks and a cost budget."""
    tasks = qty % 20 + 1
    budget = tasks * price
    return {
        "planned_qty": tasks,
        "unit_price": _money(price),
        "planned_amount": _money(budget),
        "fulfilled_qty": tasks - 1 if failure == "tasks_open" else tasks,
        "actual_cost": _money(budget * rng.randint(50, 100) // 100),
    }
