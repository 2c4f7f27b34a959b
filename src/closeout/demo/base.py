"""The demo's shared pieces: organisation codes, scenario names, the order and event
plans derived from AdventureWorks, and the builder state with the steps every type uses."""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser

from closeout.closing.models import SweepRun
from closeout.closing.services import document_close
from closeout.core.errors import DomainError
from closeout.core.models import Item, OrgUnit, Partner
from closeout.core.services import item_get_or_create, partner_get_or_create
from closeout.demo_data import table_rows
from closeout.documents.models import (
    Document,
    EventKind,
)
from closeout.documents.services import LineInput, document_upsert, event_post

DEMO_COMPANY = "DEMO"
# The second company: Adventure Works' US entity, in US dollars, holding some of the same
# purchase order numbers as the Chinese demo company (numbers are unique per company).
US_COMPANY, US_PURCHASING = "AWUS", "AWUS-PUR"
US_ORDERS = 8
# A published demo password, printed with a warning; it passes the password policy (12+ characters,
# not common, not numeric, unlike the demo users' names and e-mail addresses).
DEMO_PASSWORD = "close-the-books"  # noqa: S105
# Demo users are recognised by this address (RFC 2606 reserves .invalid: mail never leaves).
DEMO_EMAIL_DOMAIN = "demo.closeout.invalid"
AW_SOURCE = "adventureworks"
USD_RATE = Decimal("7.1000")  # a fixed demo rate: AdventureWorks trades in US dollars
NEWEST_ORDER_AGE_DAYS = 20
# The demo loads the orders its situations need plus a few ordinary ones, not the whole subset:
# every document is built through the services, event by event, and `make run` waits for it.
PO_MAX_LINES = 3
PO_ORDINARY = 8
SO_MAX_LINES = 4
SO_ORDINARY = 12
PO_DEPT, SO_DEPT, WH_DEPT, FIN_DEPT, ENG_DEPT = (
    "DEMO-PUR",
    "DEMO-SAL",
    "DEMO-WH",
    "DEMO-FIN",
    "DEMO-ENG",
)
DEPARTMENTS = (
    (PO_DEPT, "采购部 Purchasing"),
    (SO_DEPT, "销售部 Sales"),
    (WH_DEPT, "仓储部 Warehouse"),
    (FIN_DEPT, "财务部 Finance"),
    (ENG_DEPT, "工程部 Engineering"),
)
# Purchasing has two groups, and purchase orders (with their payables and requests) are spread
# over both, so that users of one group (buyer_east, auditor_east, analyst_east) show what
# scope means: another group's documents do not exist for them.
PO_EAST, PO_WEST = "DEMO-PUR-E", "DEMO-PUR-W"
SUB_UNITS = (
    (PO_EAST, "采购一部 Purchasing East", PO_DEPT),
    (PO_WEST, "采购二部 Purchasing West", PO_DEPT),
)


class Scenario:
    """Names of the situations the demo sets up on purpose (the report lists their documents)."""

    SHORT_DELIVERED = "short_delivered"
    OVER_RECEIVED = "over_received"
    INVOICE_MISMATCH = "invoice_mismatch"
    UNPAID = "unpaid"
    PARTLY_PAID = "partly_paid"
    PENDING_EVENT = "pending_event"
    OPEN_RETURN = "open_return"
    ON_HOLD = "on_hold"
    CLOSED_BY_HAND = "closed_by_hand"
    LINE_CLOSED = "line_closed"
    CLOSED_THEN_REOPENED = "closed_then_reopened"
    QUARANTINED = "quarantined"
    PAID = "paid"
    SMALL_BALANCE = "small_balance"
    VARIANCE_POSTED = "variance_posted"
    VARIANCE_UNPOSTED = "variance_unposted"
    VARIANCE_LARGE = "variance_large"
    NOT_COUNTED = "not_counted"
    ACCEPTED = "accepted"
    COSTS_PENDING = "costs_pending"
    ARCHIVED = "archived"
    OVER_BUDGET = "over_budget"
    TASKS_OPEN = "tasks_open"
    CLOSED_FOR_RECEIVING = "closed_for_receiving"
    # Found after the sweep rather than set up: closed by it, or passing but inside grace days.
    AUTO_CLOSED = "auto_closed"
    READY_WAITING = "ready_waiting"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    name: str
    scope: str
    # None: the user existed before the demo, so its password was left alone.
    password: str | None


def dec(text: str) -> Decimal:
    return Decimal(text or "0")


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def day_of(text: str) -> date:
    return date.fromisoformat(text[:10])


def half_of(qty: Decimal) -> Decimal:
    return (qty / 2).to_integral_value(rounding=ROUND_FLOOR)


def biggest_line(order: "DemoOrder") -> LineInput:
    """The line with the largest quantity (the first of equals)."""
    return max(order.lines, key=lambda line: (line.planned_qty, -line.line_no))


def spread(rows: list["DemoOrder"], count: int) -> list["DemoOrder"]:
    """`count` of `rows`, evenly spaced (all of them when there are fewer)."""
    if len(rows) <= count:
        return list(rows)
    step = len(rows) / count
    return [rows[int(i * step)] for i in range(count)]


def only_of(rows: list["DemoOrder"], allowed: list["DemoOrder"]) -> list["DemoOrder"]:
    keys = {o.key for o in allowed}
    return [o for o in rows if o.key in keys]


class Planner:
    """Gives each chosen order one role in the demo; an order never gets two."""

    def __init__(self, plan: dict[str, str], what: str) -> None:
        self.plan = plan
        self.what = what

    def __call__(self, candidates: list["DemoOrder"], name: str, count: int) -> list["DemoOrder"]:
        free = [o for o in candidates if o.key not in self.plan]
        chosen = spread(free, count)
        if len(chosen) < count:
            raise DomainError(
                f"demo data: only {len(chosen)} {self.what} can be {name}, {count} needed"
            )
        for o in chosen:
            self.plan[o.key] = name
        return chosen


@dataclass
class DemoEvent:
    kind: EventKind
    suffix: str
    day: date
    line_no: int | None = None
    quantity: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    pending: bool = False
    note: str = ""


@dataclass
class DemoOrder:
    """An AdventureWorks order about to become a document, with its derived event timeline."""

    key: str
    number: str
    order_day: date
    expected_day: date
    # Partner and items are created only for the orders the demo loads.
    partner: tuple[str, str, str]  # code, name, kind
    lines: list[LineInput]
    product_ids: list[str]
    events: list[DemoEvent] = field(default_factory=list)
    # What each line received/shipped, invoiced and settled if nothing goes wrong.
    done_qty: list[Decimal] = field(default_factory=list)
    invoice_day: list[date] = field(default_factory=list)
    pay_day: list[date] = field(default_factory=list)

    def last_day(self, today: date) -> date:
        days = [e.day for e in self.events if e.day <= today]
        return max(days, default=self.order_day)


class BuilderBase:
    """The state of one demo build and the steps every document type uses."""

    def __init__(self, *, today: date, now: datetime) -> None:
        self.today = today
        self.now = now
        self.scenarios: dict[str, list[str]] = defaultdict(list)
        self.logins: list[DemoLogin] = []
        self.sweep: SweepRun | None = None
        self.units: dict[str, OrgUnit] = {}
        self.users: dict[str, AbstractBaseUser] = {}
        self.partners: dict[str, Partner] = {}
        self.items: dict[str, Item] = {}
        self.products = {p["ProductID"]: p for p in table_rows("Product")}
        self.late_returns: list[tuple[Document, DemoOrder]] = []

    # --- helpers -------------------------------------------------------------------------------

    def at(self, day: date) -> datetime:
        """A moment on `day`, a whole number of days plus one hour before now: the grace-day
        arithmetic then gives the same answer whatever the time of day the demo is built."""
        return self.now - timedelta(days=(self.today - day).days, hours=1)

    def tag(self, scenario: str, document: Document) -> None:
        self.scenarios[scenario].append(document.label)

    def user(self, username: str) -> AbstractBaseUser:
        return self.users[username]

    def item(self, product_id: str) -> Item:
        if product_id not in self.items:
            product = self.products[product_id]
            self.items[product_id] = item_get_or_create(
                code=product["ProductNumber"], name=product["Name"]
            )
        return self.items[product_id]

    def partner(self, order: DemoOrder) -> Partner:
        code, name, kind = order.partner
        if code not in self.partners:
            self.partners[code] = partner_get_or_create(code=code, name=name, kind=kind)
        return self.partners[code]

    def lines_of(self, order: DemoOrder) -> list[LineInput]:
        return [
            replace(line, item=self.item(product_id))
            for line, product_id in zip(order.lines, order.product_ids, strict=True)
        ]

    def post(self, document: Document, event: DemoEvent, prefix: str, source: str) -> None:
        """Post one event unless it lies in the future (it has not happened yet)."""
        if event.day > self.today:
            return
        event_post(
            actor=self.user("erp"),
            document=document,
            kind=event.kind,
            external_id=f"{prefix}-{event.suffix}",
            line_no=event.line_no,
            quantity=event.quantity,
            amount=event.amount,
            occurred_at=self.at(event.day),
            source_system=source,
            pending=event.pending,
            note=event.note,
        )

    def close(
        self,
        username: str,
        document: Document,
        reason: str,
        remark: str,
        *,
        day: date | None = None,
        line_nos: list[int] | None = None,
    ) -> None:
        document_close(
            actor=self.user(username),
            document=document,
            reason_code=reason,
            remark=remark,
            close_date=min(self.today, max(day or self.today, document.document_date)),
            line_nos=line_nos,
        )

    def po_unit(self, number: str) -> OrgUnit:
        """The purchasing group of an order: even AdventureWorks order numbers go east, odd
        ones west (deterministic, and both groups get every kind of situation)."""
        digits = "".join(c for c in number if c.isdigit())
        return self.units[PO_EAST if int(digits or "0") % 2 == 0 else PO_WEST]

    def _order_upsert(
        self, order: DemoOrder, doc_type: str, unit: OrgUnit, external_id: str
    ) -> Document:
        """An AdventureWorks order as the ERP syncs it: its own number, dates and lines, in
        US dollars."""
        return document_upsert(
            actor=self.user("erp"),
            doc_type=doc_type,
            number=order.number,
            org_unit=unit,
            partner=self.partner(order),
            document_date=order.order_day,
            expected_date=order.expected_day,
            lines=self.lines_of(order),
            currency="USD",
            exchange_rate=USD_RATE,
            source_system=AW_SOURCE,
            external_id=external_id,
        )
