"""The demo data set behind `closeout demo`: a company with departments, one user per role, and
documents of all six types in realistic states, built through the services (upsert, event
posting, close, reopen, hold, sweep) so that the audit log holds real history.

Purchase and sales orders come from the AdventureWorks subset in `closeout.demo_data`: vendors
and customers become partners, products become items, order quantities and prices become lines,
received and rejected quantities become receipts and returns. Invoices and payments are derived
(payment terms, a few deliberate mistakes), and every date is shifted so that the newest order
is 20 days old. Events dated after today have simply not happened yet. Stock counts use the
AdventureWorks inventory; project stages are invented. Every choice is deterministic, so two
builds on the same day give the same documents in the same states.
"""

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, models, transaction
from django.db.models import Count, ProtectedError
from django.utils import timezone

from closeout.access.accounts import password_check
from closeout.access.companies import company_create
from closeout.access.models import Grant, Role
from closeout.access.services import grant_create
from closeout.approvals.models import AccountingPeriod
from closeout.audit.models import AuditEvent
from closeout.audit.services import audit_chain_restart, sqlite_audit_guards_lifted
from closeout.closing.dimension_services import line_dimension_close
from closeout.closing.models import SweepRun
from closeout.closing.services import document_close, document_hold, document_reopen
from closeout.closing.sweep import sweep_run
from closeout.core.errors import DomainError
from closeout.core.models import Item, OrgUnit, Partner, PartnerKind
from closeout.core.services import item_get_or_create, org_unit_create, partner_get_or_create
from closeout.demo_data import table_rows
from closeout.documents.models import (
    BusinessEvent,
    CloseKind,
    CloseState,
    DocType,
    Document,
    EventKind,
    Line,
)
from closeout.documents.services import LineInput, document_get, document_upsert, event_post

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


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    role: str
    org_unit: str
    doc_types: tuple[str, ...] = ()
    superuser: bool = False

    @property
    def scope(self) -> str:
        types = f" for {', '.join(self.doc_types)}" if self.doc_types else ""
        return f"{self.role} over {self.org_unit}{types}"


DEMO_USERS = (
    DemoUser("admin", "管理员 Administrator", "admin", DEMO_COMPANY, superuser=True),
    DemoUser("buyer_us", "美国采购 Buyer (US)", "operator", US_COMPANY, (DocType.PURCHASE_ORDER,)),
    DemoUser(
        "buyer",
        "采购员 Buyer",
        "operator",
        PO_DEPT,
        (DocType.PURCHASE_ORDER, DocType.PAYABLE),
    ),
    DemoUser(
        "seller",
        "销售员 Seller",
        "operator",
        SO_DEPT,
        (DocType.SALES_ORDER, DocType.RECEIVABLE),
    ),
    DemoUser(
        "keeper",
        "仓管员 Stock keeper",
        "operator",
        DEMO_COMPANY,
        (DocType.STOCK_COUNT, DocType.PROJECT_STAGE),
    ),
    DemoUser("supervisor", "主管 Supervisor", "supervisor", DEMO_COMPANY),
    DemoUser("finance", "财务 Finance", "finance", DEMO_COMPANY),
    DemoUser("auditor", "审计 Auditor", "auditor", DEMO_COMPANY),
    DemoUser("erp", "ERP 接口 ERP integration", "integration", DEMO_COMPANY),
    # Users of one purchasing group only.
    DemoUser(
        "buyer_east",
        "采购一部采购员 Buyer (East)",
        "operator",
        PO_EAST,
        (DocType.PURCHASE_ORDER, DocType.PAYABLE),
    ),
    DemoUser("auditor_east", "采购一部审计 Auditor (East)", "auditor", PO_EAST),
    DemoUser("analyst_east", "采购一部分析员 Analyst (East)", "analyst", PO_EAST),
)
DEMO_USERNAMES = tuple(u.username for u in DEMO_USERS)


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


@dataclass
class DemoReport:
    created: bool
    logins: list[DemoLogin]
    states: dict[str, dict[str, int]]
    scenarios: dict[str, list[str]] = field(default_factory=dict)
    sweep: SweepRun | None = None
    events: int = 0
    audit_events: int = 0
    seconds: float = 0.0

    @property
    def documents(self) -> int:
        return sum(sum(by_state.values()) for by_state in self.states.values())


# --- public entry points ---------------------------------------------------------------------


def demo_exists() -> bool:
    return OrgUnit.objects.filter(code=DEMO_COMPANY).exists()


def demo_load(*, reset: bool = False) -> DemoReport:
    """Build the demo unless it is there already (then nothing changes). With `reset`, first
    remove every closeout record (documents, events, grants, demo users, audit log, sweep
    runs, organisation and master data) and rebuild. One transaction: all or nothing."""
    started = time.monotonic()
    with transaction.atomic():
        if reset:
            demo_reset()
        elif demo_exists():
            return DemoReport(False, _logins_present(), document_states())
        builder = _Builder(today=timezone.localdate(), now=timezone.now())
        builder.build()
    report = DemoReport(
        created=True,
        logins=builder.logins,
        states=document_states(),
        scenarios={k: sorted(set(v)) for k, v in sorted(builder.scenarios.items())},
        sweep=builder.sweep,
        events=BusinessEvent.objects.count(),
        audit_events=AuditEvent.objects.count(),
    )
    report.seconds = time.monotonic() - started
    return report


def document_states() -> dict[str, dict[str, int]]:
    rows = Document.objects.values_list("doc_type", "close_state").annotate(n=Count("id"))
    states: dict[str, dict[str, int]] = {}
    for doc_type, state, n in rows:
        states.setdefault(doc_type, {})[state] = n
    return states


def _logins_present() -> list[DemoLogin]:
    users = {u.get_username(): u for u in _demo_users_qs()}
    return [
        DemoLogin(u.username, u.name, u.scope, DEMO_PASSWORD if u.username in users else None)
        for u in DEMO_USERS
    ]


def _demo_users_qs() -> "models.QuerySet[Any]":
    return get_user_model().objects.filter(email__iendswith=f"@{DEMO_EMAIL_DOMAIN}")


# --- reset -----------------------------------------------------------------------------------

# Transactional data: these tables and every table that refers to them are emptied.
_RESET_ROOTS: tuple[type[models.Model], ...] = (
    Document,
    Line,
    BusinessEvent,
    SweepRun,
    Grant,
    AuditEvent,
)
# Activity records of other modules (looked up by label: a module may not be installed).
_RESET_ROOT_LABELS = (
    "approvals.CloseRequest",
    "batches.BatchJob",
    "notifications.Notification",
    "notifications.WebhookDelivery",
    "closing.ArchiveRun",
)


def _reset_roots() -> list[type[models.Model]]:
    roots = list(_RESET_ROOTS)
    for label in _RESET_ROOT_LABELS:
        try:
            roots.append(apps.get_model(label))
        except LookupError:
            continue
    return roots


def _referring_closure(roots: Iterable[type[models.Model]]) -> list[type[models.Model]]:
    """The roots plus every installed model with a foreign key into the set (transitively),
    ordered so that a model comes before the models it refers to."""
    chosen: list[type[models.Model]] = list(roots)
    every = apps.get_models(include_auto_created=True)
    changed = True
    while changed:
        changed = False
        for model in every:
            if model in chosen:
                continue
            if any(
                f.is_relation and f.related_model in chosen and not f.auto_created
                for f in model._meta.concrete_fields
            ):
                chosen.append(model)
                changed = True
    ordered: list[type[models.Model]] = []

    def visit(model: type[models.Model], path: tuple[type[models.Model], ...]) -> None:
        if model in ordered or model in path:
            return
        for other in chosen:
            if other is not model and any(
                f.is_relation and f.related_model is model for f in other._meta.concrete_fields
            ):
                visit(other, (*path, model))
        ordered.append(model)

    for model in chosen:
        visit(model, ())
    return ordered


def demo_reset() -> None:
    """Remove every closeout record and restart the audit chain at the genesis hash: documents,
    events, requests, batches, notifications, grants, audit events, sweep runs, demo users,
    organisation units with the settings scoped to them (the demo's approval routes among them),
    accounting periods, partners and items. Keeps the configuration that is not tied to an
    organisation unit: roles, reason codes, default close policies. Call inside a transaction
    (`demo_load(reset=True)` does)."""
    tables = [m._meta.db_table for m in _referring_closure(_reset_roots())]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The audit table refuses DELETE (trigger); TRUNCATE is a separate privilege. Deferred
            # foreign-key checks pending in this transaction would block TRUNCATE: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                f"TRUNCATE {', '.join(quote(t) for t in tables)} RESTART IDENTITY CASCADE"
            )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            with sqlite_audit_guards_lifted():
                for table in tables:
                    cursor.execute(f"DELETE FROM {quote(table)}")  # noqa: S608 (model table names)
    audit_chain_restart()
    try:
        AccountingPeriod.objects.all().delete()  # before the companies they belong to
        # Settings scoped to an organisation unit (close policies, approval routes…) go with it.
        for model in apps.get_models():
            for f in model._meta.concrete_fields:
                if f.is_relation and f.related_model is OrgUnit and model is not OrgUnit:
                    model._base_manager.filter(**{f"{f.name}__isnull": False}).delete()
        _demo_users_qs().delete()
        AccountingPeriod.objects.all().delete()
        Partner.objects.all().delete()
        Item.objects.all().delete()
        # Children before parents (the parent link protects).
        for unit in sorted(OrgUnit.objects.all(), key=lambda u: -len(u.path)):
            unit.delete()
    except ProtectedError as exc:
        blocked = sorted({f"{o._meta.label} {o}" for o in list(exc.protected_objects)[:3]})
        raise DomainError(
            "demo reset: some records still refer to the organisation or master data: "
            + "; ".join(blocked),
            details={"blocked_by": blocked},
        ) from exc


# --- the builder -----------------------------------------------------------------------------


def _dec(text: str) -> Decimal:
    return Decimal(text or "0")


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


def _half(qty: Decimal) -> Decimal:
    return (qty / 2).to_integral_value(rounding=ROUND_FLOOR)


def _biggest(order: "_Order") -> LineInput:
    """The line with the largest quantity (the first of equals)."""
    return max(order.lines, key=lambda line: (line.planned_qty, -line.line_no))


def _spread(rows: list["_Order"], count: int) -> list["_Order"]:
    """`count` of `rows`, evenly spaced (all of them when there are fewer)."""
    if len(rows) <= count:
        return list(rows)
    step = len(rows) / count
    return [rows[int(i * step)] for i in range(count)]


def _only(rows: list["_Order"], allowed: list["_Order"]) -> list["_Order"]:
    keys = {o.key for o in allowed}
    return [o for o in rows if o.key in keys]


class _Planner:
    """Gives each chosen order one role in the demo; an order never gets two."""

    def __init__(self, plan: dict[str, str], what: str) -> None:
        self.plan = plan
        self.what = what

    def __call__(self, candidates: list["_Order"], name: str, count: int) -> list["_Order"]:
        free = [o for o in candidates if o.key not in self.plan]
        chosen = _spread(free, count)
        if len(chosen) < count:
            raise DomainError(
                f"demo data: only {len(chosen)} {self.what} can be {name}, {count} needed"
            )
        for o in chosen:
            self.plan[o.key] = name
        return chosen


@dataclass
class _Event:
    kind: EventKind
    suffix: str
    day: date
    line_no: int | None = None
    quantity: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    pending: bool = False
    note: str = ""


@dataclass
class _Order:
    """An AdventureWorks order about to become a document, with its derived event timeline."""

    key: str
    number: str
    order_day: date
    expected_day: date
    # Partner and items are created only for the orders the demo loads.
    partner: tuple[str, str, str]  # code, name, kind
    lines: list[LineInput]
    product_ids: list[str]
    events: list[_Event] = field(default_factory=list)
    # What each line received/shipped, invoiced and settled if nothing goes wrong.
    done_qty: list[Decimal] = field(default_factory=list)
    invoice_day: list[date] = field(default_factory=list)
    pay_day: list[date] = field(default_factory=list)

    def last_day(self, today: date) -> date:
        days = [e.day for e in self.events if e.day <= today]
        return max(days, default=self.order_day)


class _Builder:
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
        self.late_returns: list[tuple[Document, _Order]] = []

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

    def partner(self, order: _Order) -> Partner:
        code, name, kind = order.partner
        if code not in self.partners:
            self.partners[code] = partner_get_or_create(code=code, name=name, kind=kind)
        return self.partners[code]

    def lines_of(self, order: _Order) -> list[LineInput]:
        return [
            replace(line, item=self.item(product_id))
            for line, product_id in zip(order.lines, order.product_ids, strict=True)
        ]

    def post(self, document: Document, event: _Event, prefix: str, source: str) -> None:
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

    # --- the whole build -----------------------------------------------------------------------

    def build(self) -> None:
        self.organisation()
        self.people()
        self.purchase_orders()
        self.sales_orders()
        self.stock_counts()
        self.project_stages()
        self.sweep = sweep_run()
        self.after_sweep()
        self.closed_for_receiving()
        self.found_after_sweep()
        self.undone_batch()
        self.approvals()
        self.archived_last_year()
        self.us_company()

    def _us_orders(self, headers: list[dict[str, str]]) -> list[dict[str, str]]:
        """Two orders the Chinese company has too (the same numbers), then orders it does not
        have."""
        loaded = set(
            Document.objects.filter(doc_type=DocType.PURCHASE_ORDER).values_list(
                "number", flat=True
            )
        )
        numbered = [(f"PO{h['PurchaseOrderID']}", h) for h in headers]
        shared = [h for n, h in numbered if n in loaded][:2]
        others = [h for n, h in numbered if n not in loaded]
        return shared + others[: US_ORDERS - len(shared)]

    def us_company(self) -> None:
        """The US company's purchase orders (after the sweep, so the Chinese company's figures
        stay as they are): AdventureWorks orders in dollars at rate 1, several with the same
        number as an order of the Chinese company; the administrator, the auditor and the ERP
        interface hold their roles there too (the group view)."""
        roles = {role.code: role for role in Role.objects.all()}
        for username, role in (("admin", "admin"), ("auditor", "auditor"), ("erp", "integration")):
            grant_create(
                actor=None,
                user=self.user(username),
                role=roles[role],
                org_unit=self.units[US_COMPANY],
                reason="closeout demo: group view",
            )
        headers = sorted(table_rows("PurchaseOrderHeader"), key=lambda h: int(h["PurchaseOrderID"]))
        chosen = self._us_orders(headers)
        for h, order in zip(chosen, self._po_orders(chosen), strict=True):
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PURCHASE_ORDER,
                number=order.number,
                org_unit=self.units[US_PURCHASING],
                partner=self.partner(order),
                document_date=order.order_day,
                expected_date=order.expected_day,
                lines=self.lines_of(order),
                currency="USD",
                source_system=AW_SOURCE,
                external_id=f"US/PurchaseOrder/{h['PurchaseOrderID']}",
            )
            for event in order.events:
                self.post(document, event, f"AWUS-{order.number}", AW_SOURCE)

    def closed_for_receiving(self) -> None:
        """One short-delivered purchase order closed for receiving (收货关闭): its open quantity
        leaves the order book while its invoicing and payment stay open."""
        for label in self.scenarios[Scenario.SHORT_DELIVERED]:
            document = document_get(DocType.PURCHASE_ORDER, label.split(" ", 1)[1])
            short = [
                line.line_no
                for line in document.lines.filter(close_state=CloseState.OPEN)
                if line.fulfilled_qty < line.planned_qty
            ]
            if document.close_state != CloseState.OPEN or not short:
                continue
            line_dimension_close(
                actor=self.user("buyer"),
                document=document,
                dimension="receiving",
                reason_code="short_delivery_accepted",
                remark="供应商停产，余量不再交货 the supplier discontinued the item",
                line_nos=short[:1],
            )
            self.tag(Scenario.CLOSED_FOR_RECEIVING, document)
            return

    def archived_last_year(self) -> None:
        """Two purchase orders of last year, received, invoiced, paid and closed by hand more
        than a year ago, then archived (最终结案) by the archive run: the final state is visible."""
        from closeout.reports.archive import archive_run

        partner = self.partners[min(self.partners)]
        item = self.items[min(self.items)]
        for n, age in enumerate((480, 450), start=1):
            day = self.today - timedelta(days=age)
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PURCHASE_ORDER,
                number=f"PO-ARCH-{n:02d}",
                org_unit=self.units[PO_EAST if n == 1 else PO_WEST],
                partner=partner,
                document_date=day,
                lines=[
                    LineInput(line_no=1, planned_qty=Decimal(20), unit_price=Decimal(15), item=item)
                ],
            )
            for kind, qty, amount, after in (
                (EventKind.RECEIPT, 20, 0, 10),
                (EventKind.INVOICE, 20, 300, 12),
                (EventKind.PAYMENT, 0, 300, 40),
            ):
                event_post(
                    actor=self.user("erp"),
                    document=document,
                    kind=kind,
                    external_id=f"DEMO-ARCH-{n}-{kind}",
                    line_no=1,
                    quantity=qty,
                    amount=amount,
                    occurred_at=self.at(day + timedelta(days=after)),
                )
            self.close("buyer", document, "completed", "", day=day + timedelta(days=45))
            self.tag(Scenario.ARCHIVED, document)
        archive_run(doc_type=DocType.PURCHASE_ORDER)

    def organisation(self) -> None:
        company = org_unit_create(code=DEMO_COMPANY, name="演示公司 Adventure Works Cycles (demo)")
        self.units[DEMO_COMPANY] = company
        for code, name in DEPARTMENTS:
            self.units[code] = org_unit_create(code=code, name=name, parent=company)
        for code, name, parent in SUB_UNITS:
            self.units[code] = org_unit_create(code=code, name=name, parent=self.units[parent])
        us = company_create(
            actor=None,
            code=US_COMPANY,
            name="Adventure Works Cycles, Inc. (US)",
            currency="USD",
            time_zone="America/Los_Angeles",
            fiscal_year_start_month=7,
        )
        self.units[US_COMPANY] = us.unit
        self.units[US_PURCHASING] = org_unit_create(
            code=US_PURCHASING, name="Purchasing (US)", parent=us.unit
        )

    def po_unit(self, number: str) -> OrgUnit:
        """The purchasing group of an order: even AdventureWorks order numbers go east, odd
        ones west (deterministic, and both groups get every kind of situation)."""
        digits = "".join(c for c in number if c.isdigit())
        return self.units[PO_EAST if int(digits or "0") % 2 == 0 else PO_WEST]

    def people(self) -> None:
        user_model = get_user_model()
        roles = {role.code: role for role in Role.objects.all()}
        # One hash for all: the password is the same and public, and hashing is slow on purpose.
        hashed = make_password(DEMO_PASSWORD)
        for spec in DEMO_USERS:
            user = user_model.objects.filter(username=spec.username).first()
            password: str | None = None
            if user is None:
                user = user_model.objects.create_user(
                    username=spec.username,
                    email=f"{spec.username}@{DEMO_EMAIL_DOMAIN}",
                    first_name=spec.name[:150],
                    is_staff=spec.superuser,
                    is_superuser=spec.superuser,
                )
                password_check(DEMO_PASSWORD, user)
                user.password = hashed
                user.save(update_fields=["password"])
                password = DEMO_PASSWORD
            elif user.email.lower().endswith(f"@{DEMO_EMAIL_DOMAIN}"):
                password = DEMO_PASSWORD
            self.users[spec.username] = user
            grant_create(
                actor=None,
                user=user,
                role=roles[spec.role],
                org_unit=self.units[spec.org_unit],
                doc_types=list(spec.doc_types),
                reason="closeout demo",
            )
            self.logins.append(DemoLogin(spec.username, spec.name, spec.scope, password))

    # --- purchase orders and payables ----------------------------------------------------------

    def _po_orders(self, headers: list[dict[str, str]] | None = None) -> list[_Order]:
        """The AdventureWorks purchase orders (those of `headers`, default all) with their
        derived timelines, dates shifted so that the newest order is 20 days old."""
        every = sorted(table_rows("PurchaseOrderHeader"), key=lambda h: int(h["PurchaseOrderID"]))
        details: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in table_rows("PurchaseOrderDetail"):
            details[row["PurchaseOrderID"]].append(row)
        vendors = {v["BusinessEntityID"]: v for v in table_rows("Vendor")}
        newest = max(_day(h["OrderDate"]) for h in every)
        shift = (self.today - timedelta(days=NEWEST_ORDER_AGE_DAYS)) - newest
        return [
            self._po_timeline(
                h,
                sorted(
                    details[h["PurchaseOrderID"]], key=lambda d: int(d["PurchaseOrderDetailID"])
                ),
                vendors[h["VendorID"]],
                shift,
            )
            for h in (every if headers is None else headers)
        ]

    def purchase_orders(self) -> None:
        headers = sorted(table_rows("PurchaseOrderHeader"), key=lambda h: int(h["PurchaseOrderID"]))
        orders = self._po_orders(headers)
        status = {order.key: h["Status"] for order, h in zip(orders, headers, strict=True)}

        def is_short(o: _Order) -> bool:
            return any(
                done < line.planned_qty * Decimal("0.98")
                for done, line in zip(o.done_qty, o.lines, strict=True)
            )

        rejected = [o for o in orders if status[o.key] == "3"]
        short = [o for o in orders if status[o.key] != "3" and is_short(o)]
        complete = [o for o in orders if status[o.key] != "3" and not is_short(o)]
        # "Old" orders were paid long enough ago to pass the grace days.
        old = [o for o in complete if max(o.pay_day) <= self.today - timedelta(days=35)]
        paid = [o for o in complete if max(o.pay_day) <= self.today]
        unpaid = [o for o in complete if max(o.invoice_day) <= self.today < max(o.pay_day)]
        received = [
            o
            for o in complete
            if all(e.day <= self.today for e in o.events if e.kind == EventKind.RECEIPT)
        ]
        plan: dict[str, str] = {}
        assign = _Planner(plan, "purchase orders")
        # Small orders keep the build fast; a line-close needs a second line.
        small = [o for o in orders if len(o.lines) <= PO_MAX_LINES]
        payables = assign(_only(old, small), "payable_source", 12)
        assign(_only(paid, small), "over_received", 2)
        assign(_only(unpaid, small), "over_received", 1)
        assign(_only(paid, small), "invoice_mismatch", 2)
        assign(_only(unpaid, small), "invoice_mismatch", 1)
        assign(_only(paid, small), "partly_paid", 2)
        assign(_only(unpaid, small), "unpaid", 3)
        assign(_only(list(reversed(received)), small), "pending_receipt", 1)
        assign(_only(list(reversed(received)), small), "on_hold", 1)
        assign(_only(rejected, small), "closed_rejected", 3)
        assign(_only(rejected, small), "short_open", 1)
        # A line close on an order that stays open: its other lines still wait for payment.
        assign(
            [o for o in short if len(o.lines) > 1 and max(o.pay_day) > self.today],
            "line_closed",
            1,
        )
        short_small = _only(short, small)
        for name in ("closed_short", "closed_short_cannot", "closed_quarantined"):
            assign(short_small, name, 1)
        assign(short_small, "reopened", 2)
        assign(short_small, "short_open", 3)
        assign(small, "ordinary", PO_ORDINARY)
        for order in orders:
            if order.key in plan:
                unit = self.po_unit(order.number)
                self._po_document(order, plan[order.key], unit, short, unpaid)
        for index, order in enumerate(payables):
            self._settlement(order, index, DocType.PAYABLE, "AP", "SupplierInvoice", "buyer")

    def _po_timeline(
        self,
        h: dict[str, str],
        rows: list[dict[str, str]],
        vendor: dict[str, str],
        shift: timedelta,
    ) -> _Order:
        order_day = _day(h["OrderDate"]) + shift
        order = _Order(
            key=f"PO{h['PurchaseOrderID']}",
            number=f"PO{h['PurchaseOrderID']}",
            order_day=order_day,
            expected_day=_day(h["ShipDate"]) + shift,
            partner=(vendor["AccountNumber"], vendor["Name"], PartnerKind.SUPPLIER),
            lines=[],
            product_ids=[],
        )
        # Better-rated vendors get paid sooner (net 30); the others wait longer (net 45).
        terms = 30 if vendor["CreditRating"] in ("1", "2") else 45
        for no, row in enumerate(rows, start=1):
            qty, price = _dec(row["OrderQty"]), _dec(row["UnitPrice"])
            product = self.products[row["ProductID"]]
            order.lines.append(
                LineInput(
                    line_no=no,
                    planned_qty=qty,
                    unit_price=price,
                    description=product["Name"],
                )
            )
            order.product_ids.append(row["ProductID"])
            received, rejected = _dec(row["ReceivedQty"]), _dec(row["RejectedQty"])
            stocked = received - rejected
            receipt = max(order_day, _day(row["DueDate"]) + shift)
            invoice, pay = receipt + timedelta(days=3), receipt + timedelta(days=3 + terms)
            order.done_qty.append(stocked)
            order.invoice_day.append(invoice)
            order.pay_day.append(pay)
            if received > 0:
                order.events.append(_Event(EventKind.RECEIPT, f"{no}-RCV", receipt, no, received))
            if rejected > 0:
                order.events.append(
                    _Event(
                        EventKind.RETURN,
                        f"{no}-RJT",
                        receipt + timedelta(days=1),
                        no,
                        rejected,
                        note="验收不合格退回 rejected at inspection",
                    )
                )
            if stocked > 0:
                amount = _money(stocked * price)
                order.events.append(
                    _Event(EventKind.INVOICE, f"{no}-INV", invoice, no, stocked, amount)
                )
                order.events.append(_Event(EventKind.PAYMENT, f"{no}-PAY", pay, no, amount=amount))
        return order

    def _po_document(
        self,
        order: _Order,
        plan: str,
        unit: OrgUnit,
        short: list[_Order],
        unpaid: list[_Order],
    ) -> None:
        events = self._po_adjust(order, plan)
        document = self._order_upsert(
            order, DocType.PURCHASE_ORDER, unit, f"PurchaseOrder/{order.number[2:]}"
        )
        prefix = f"AW-{order.number}"
        if plan == "on_hold":
            document_hold(
                actor=self.user("buyer"),
                document=document,
                reason="供应商质量争议，暂停收货 quality dispute with the supplier: hold receipts",
            )
            self.tag(Scenario.ON_HOLD, document)
            events = [e for e in events if e.kind == EventKind.RECEIPT]
            self.tag(Scenario.QUARANTINED, document)
        for event in events:
            self.post(document, event, prefix, AW_SOURCE)
        if plan in ("ordinary", "payable_source", "short_open", "unpaid"):
            if order in short or plan == "short_open":
                self.tag(Scenario.SHORT_DELIVERED, document)
            elif order in unpaid:
                self.tag(Scenario.UNPAID, document)
            return
        day = order.last_day(self.today) + timedelta(days=2)
        if plan == "over_received":
            self.tag(Scenario.OVER_RECEIVED, document)
        elif plan == "invoice_mismatch":
            self.tag(Scenario.INVOICE_MISMATCH, document)
        elif plan == "partly_paid":
            self.tag(Scenario.PARTLY_PAID, document)
        elif plan == "pending_receipt":
            self.tag(Scenario.PENDING_EVENT, document)
        elif plan == "closed_rejected":
            self.close(
                "buyer",
                document,
                "supplier_cannot_deliver",
                "验收全部不合格已退回，供应商无法补货 all goods failed inspection and went back; "
                "the supplier cannot replace them",
                day=day,
            )
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif plan == "line_closed":
            short_line = next(
                line.line_no
                for line, done in zip(order.lines, order.done_qty, strict=True)
                if done < line.planned_qty * Decimal("0.98")
            )
            self.close(
                "buyer",
                document,
                "short_delivery_accepted",
                "该行余量不再交货 the rest of this line will not be delivered",
                day=day,
                line_nos=[short_line],
            )
            self.tag(Scenario.LINE_CLOSED, document)
        elif plan in ("closed_short", "closed_short_cannot"):
            reason = (
                "short_delivery_accepted" if plan == "closed_short" else "supplier_cannot_deliver"
            )
            remark = (
                "供应商确认余量不再交货 the supplier confirmed the remainder will not come"
                if plan == "closed_short"
                else "供应商停产该零件 the supplier discontinued the part"
            )
            self.close("buyer", document, reason, remark, day=day)
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif plan in ("closed_quarantined", "reopened"):
            self.close(
                "buyer",
                document,
                "short_delivery_accepted",
                "供应商确认余量不再交货 the supplier confirmed the remainder will not come",
                day=day,
            )
            late = min(self.today, day + timedelta(days=4))
            for line, done in zip(order.lines, order.done_qty, strict=True):
                missing = line.planned_qty - done
                if missing > 0:
                    late_receipt = _Event(
                        EventKind.RECEIPT,
                        f"{line.line_no}-RCV-LATE",
                        late,
                        line.line_no,
                        missing,
                        note="结案后到货 goods arrived after the close",
                    )
                    self.post(document, late_receipt, prefix, AW_SOURCE)
            if plan == "reopened":
                document_reopen(
                    actor=self.user("supervisor"),
                    document=document,
                    reason_code="late_delivery",
                    remark="供应商补发了余量，重新打开以入账 the remainder arrived after all",
                )
                self.tag(Scenario.CLOSED_THEN_REOPENED, document)
            else:
                self.tag(Scenario.QUARANTINED, document)

    def _po_adjust(self, order: _Order, plan: str) -> list[_Event]:
        """The order's events with the deliberate mistakes of its plan."""
        events = list(order.events)
        first = order.lines[0]
        if plan == "over_received":
            extra = Decimal(max(1, math.ceil(first.planned_qty / 10)))
            receipt = next(e for e in events if e.suffix == "1-RCV")
            events.append(
                _Event(
                    EventKind.RECEIPT,
                    "1-RCV-EXTRA",
                    receipt.day + timedelta(days=1),
                    1,
                    extra,
                    note="供应商多发 the supplier shipped more than ordered",
                )
            )
        elif plan == "invoice_mismatch":
            for e in events:
                if e.suffix in ("1-INV", "1-PAY"):
                    e.amount = _money(e.amount * Decimal("1.04"))
                    e.note = "发票单价高于订单价 invoiced above the order price"
        elif plan == "partly_paid":
            for e in events:
                if e.kind == EventKind.PAYMENT:
                    e.amount = _money(e.amount * Decimal("0.6"))
                    e.note = "部分付款 part payment"
        elif plan == "pending_receipt":
            last = max(
                (e for e in events if e.kind == EventKind.RECEIPT), key=lambda e: e.line_no or 0
            )
            last.pending = True
            last.note = "待检验 awaiting inspection"
            events = [
                e for e in events if not (e.line_no == last.line_no and e.kind != EventKind.RECEIPT)
            ]
        return events

    # --- sales orders and receivables ----------------------------------------------------------

    def sales_orders(self) -> None:
        headers = sorted(table_rows("SalesOrderHeader"), key=lambda h: int(h["SalesOrderID"]))
        details: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in table_rows("SalesOrderDetail"):
            details[row["SalesOrderID"]].append(row)
        customers = {c["CustomerID"]: c for c in table_rows("Customer")}
        newest = max(_day(h["OrderDate"]) for h in headers)
        shift = (self.today - timedelta(days=NEWEST_ORDER_AGE_DAYS)) - newest
        online: list[_Order] = []
        reseller: list[_Order] = []
        for h in headers:
            rows = sorted(details[h["SalesOrderID"]], key=lambda d: int(d["SalesOrderDetailID"]))
            order = self._so_timeline(h, rows, customers[h["CustomerID"]], shift)
            (online if h["OnlineOrderFlag"] == "1" else reseller).append(order)
        plan: dict[str, str] = {}
        assign = _Planner(plan, "sales orders")
        online = [o for o in online if len(o.lines) <= SO_MAX_LINES]
        reseller = [o for o in reseller if len(o.lines) <= SO_MAX_LINES]
        for name in ("open_return", "returned_closed", "late_return"):
            assign(online, name, 2)
        # A short shipment needs a line of at least two pieces.
        splittable = [o for o in reseller if _biggest(o).planned_qty >= 2]
        for name in ("short_open", "short_closed", "short_reopened"):
            assign(splittable, name, 1)
        for name in ("invoice_mismatch", "partly_paid", "unpaid"):
            assign(reseller, name, 2)
        assign(reseller, "on_hold", 1)
        receivables = assign(reseller, "receivable_source", 12)
        assign(online, "ordinary", SO_ORDINARY)
        unit = self.units[SO_DEPT]
        for order in sorted(online + reseller, key=lambda o: o.number):
            # The orders behind the receivables are not loaded themselves, to keep the build
            # fast: each receivable carries its order's line amounts.
            if plan.get(order.key, "receivable_source") != "receivable_source":
                self._so_document(order, plan[order.key], unit)
        for index, order in enumerate(receivables):
            self._settlement(order, index, DocType.RECEIVABLE, "AR", "SalesInvoice", "finance")

    def _so_timeline(
        self,
        h: dict[str, str],
        rows: list[dict[str, str]],
        customer: dict[str, str],
        shift: timedelta,
    ) -> _Order:
        name = (
            f"经销商 reseller store {customer['StoreID']}"
            if customer["StoreID"] and not customer["PersonID"]
            else f"网上客户 online customer {customer['PersonID'] or customer['CustomerID']}"
        )
        order_day = _day(h["OrderDate"]) + shift
        ship = _day(h["ShipDate"]) + shift
        order = _Order(
            key=h["SalesOrderNumber"],
            number=h["SalesOrderNumber"],
            order_day=order_day,
            expected_day=_day(h["DueDate"]) + shift,
            partner=(customer["AccountNumber"], name, PartnerKind.CUSTOMER),
            lines=[],
            product_ids=[],
        )
        online = h["OnlineOrderFlag"] == "1"
        # Online orders are paid by card when they ship; resellers pay net 30.
        pay = ship if online else ship + timedelta(days=30)
        for no, row in enumerate(rows, start=1):
            qty = _dec(row["OrderQty"])
            price = (_dec(row["UnitPrice"]) * (1 - _dec(row["UnitPriceDiscount"]))).quantize(
                Decimal("0.000001"), rounding=ROUND_HALF_UP
            )
            product = self.products[row["ProductID"]]
            order.lines.append(
                LineInput(
                    line_no=no,
                    planned_qty=qty,
                    unit_price=price,
                    description=product["Name"],
                )
            )
            order.product_ids.append(row["ProductID"])
            amount = _money(qty * price)
            order.done_qty.append(qty)
            order.invoice_day.append(ship)
            order.pay_day.append(pay)
            order.events.append(_Event(EventKind.SHIPMENT, f"{no}-SHP", ship, no, qty))
            order.events.append(_Event(EventKind.INVOICE, f"{no}-INV", ship, no, qty, amount))
            order.events.append(_Event(EventKind.PAYMENT, f"{no}-PAY", pay, no, amount=amount))
        return order

    def _so_adjust(self, order: _Order, plan: str) -> list[_Event]:
        events = list(order.events)
        if plan.startswith("short_"):
            # The line with the largest quantity ships half now; the rest is backordered.
            big = _biggest(order)
            half = _half(big.planned_qty)
            for e in events:
                if e.line_no != big.line_no:
                    continue
                if e.kind in (EventKind.SHIPMENT, EventKind.INVOICE):
                    e.quantity = half
                if e.kind in (EventKind.INVOICE, EventKind.PAYMENT):
                    e.amount = _money(half * big.unit_price)
        elif plan == "invoice_mismatch":
            for e in events:
                if e.suffix in ("1-INV", "1-PAY"):
                    e.amount = _money(e.amount * Decimal("1.05"))
                    e.note = "发票未扣折扣 the invoice missed the discount"
        elif plan == "partly_paid":
            for e in events:
                if e.kind == EventKind.PAYMENT:
                    e.amount = _money(e.amount * Decimal("0.7"))
                    e.note = "部分收款 part payment"
        elif plan in ("unpaid", "on_hold"):
            events = [e for e in events if e.kind != EventKind.PAYMENT]
        return events

    def _order_upsert(
        self, order: _Order, doc_type: str, unit: OrgUnit, external_id: str
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

    def _so_document(self, order: _Order, plan: str, unit: OrgUnit) -> None:
        events = self._so_adjust(order, plan)
        document = self._order_upsert(
            order, DocType.SALES_ORDER, unit, f"SalesOrder/{order.number[2:]}"
        )
        prefix = f"AW-{order.number}"
        for event in events:
            self.post(document, event, prefix, AW_SOURCE)
        ship = order.events[0].day
        first = order.lines[0]
        if plan == "ordinary":
            return
        if plan == "open_return":
            self.post(
                document,
                _Event(
                    EventKind.RETURN,
                    "1-RET",
                    ship + timedelta(days=6),
                    1,
                    Decimal(1),
                    note="客户退货，待开红字发票 customer return, credit note to follow",
                ),
                prefix,
                AW_SOURCE,
            )
            self.tag(Scenario.OPEN_RETURN, document)
        elif plan == "returned_closed":
            back = ship + timedelta(days=5)
            refund = _money(first.planned_qty * first.unit_price)
            for event in (
                _Event(EventKind.RETURN, "1-RET", back, 1, first.planned_qty, note="客户退货"),
                _Event(
                    EventKind.CREDIT_NOTE,
                    "1-CRN",
                    back + timedelta(days=1),
                    1,
                    first.planned_qty,
                    refund,
                    note="红字发票 credit note for the return",
                ),
            ):
                self.post(document, event, prefix, AW_SOURCE)
            self.close(
                "seller",
                document,
                "goods_returned",
                "客户退货并已退款 the customer returned the goods and was refunded",
                day=back + timedelta(days=2),
            )
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif plan == "late_return":
            self.late_returns.append((document, order))
        elif plan == "short_open":
            self.tag(Scenario.SHORT_DELIVERED, document)
        elif plan in ("short_closed", "short_reopened"):
            self.close(
                "seller",
                document,
                "customer_change",
                "客户取消了缺货部分 the customer cancelled the backordered remainder",
                day=order.last_day(self.today) + timedelta(days=3),
            )
            if plan == "short_closed":
                self.tag(Scenario.CLOSED_BY_HAND, document)
                return
            document_reopen(
                actor=self.user("supervisor"),
                document=document,
                reason_code="customer_reorder",
                remark="客户又要求补发余量 the customer asks for the remainder after all",
            )
            big = _biggest(order)
            shipped = _half(big.planned_qty)
            self.post(
                document,
                _Event(
                    EventKind.SHIPMENT,
                    f"{big.line_no}-SHP2",
                    self.today - timedelta(days=2),
                    big.line_no,
                    big.planned_qty - shipped,
                    note="补发余量 remainder shipped",
                ),
                prefix,
                AW_SOURCE,
            )
            self.tag(Scenario.CLOSED_THEN_REOPENED, document)
        elif plan == "invoice_mismatch":
            self.tag(Scenario.INVOICE_MISMATCH, document)
        elif plan == "partly_paid":
            self.tag(Scenario.PARTLY_PAID, document)
        elif plan == "unpaid":
            self.tag(Scenario.UNPAID, document)
        elif plan == "on_hold":
            document_hold(
                actor=self.user("seller"),
                document=document,
                reason="客户超出信用额度，冻结 the customer is over its credit limit",
            )
            for event in order.events:
                if event.kind == EventKind.PAYMENT:
                    self.post(document, event, prefix, AW_SOURCE)
            self.tag(Scenario.ON_HOLD, document)
            self.tag(Scenario.QUARANTINED, document)

    # --- receivables and payables --------------------------------------------------------------

    def _settlement(
        self, order: _Order, index: int, doc_type: DocType, code: str, ext: str, closer: str
    ) -> None:
        """A receivable or payable for an order's invoice. The index picks the situation:
        0-2 paid long ago, 3 paid recently, 4 a small balance left, 5-6 part-paid, 7 invoiced
        above the order, 8 unpaid, 9 written off by hand, 10 closed then reopened, 11 closed
        and then a late payment arrives."""
        unit = self.po_unit(order.number) if doc_type == DocType.PAYABLE else self.units[SO_DEPT]
        invoice_day = min(order.invoice_day)
        lines: list[LineInput] = []
        for line, done in zip(self.lines_of(order), order.done_qty, strict=True):
            if done > 0:
                lines.append(
                    LineInput(
                        line_no=len(lines) + 1,
                        planned_qty=done,
                        unit_price=line.unit_price,
                        item=line.item,
                        description=line.description,
                        planned_amount=_money(done * line.unit_price),
                    )
                )
        number = f"{code}-{order.number}"
        document = document_upsert(
            actor=self.user("erp"),
            doc_type=doc_type,
            number=number,
            org_unit=unit,
            partner=self.partner(order),
            document_date=invoice_day,
            expected_date=invoice_day + timedelta(days=30),
            lines=lines,
            currency="USD",
            exchange_rate=USD_RATE,
            source_system=AW_SOURCE,
            external_id=f"{ext}/{order.number}",
        )
        pay_day = invoice_day + timedelta(days=30)
        if index == 3:
            pay_day = self.today - timedelta(days=5)
        prefix = f"AW-{number}"
        for line in lines:
            amount = line.planned_amount or Decimal(0)
            invoiced = (
                _money(amount * Decimal("1.03")) if index == 7 and line.line_no == 1 else amount
            )
            self.post(
                document,
                _Event(
                    EventKind.INVOICE,
                    f"{line.line_no}-INV",
                    invoice_day,
                    line.line_no,
                    line.planned_qty,
                    invoiced,
                ),
                prefix,
                AW_SOURCE,
            )
            paid = invoiced
            if index == 4 and line.line_no == 1:
                paid = invoiced - Decimal("6.50")
            elif index in (5, 6):
                paid = _money(invoiced * Decimal("0.6"))
            elif index in (9, 10, 11) and line.line_no == 1:
                paid = invoiced - min(Decimal(250), invoiced / 2)
            if index != 8:
                self.post(
                    document,
                    _Event(
                        EventKind.PAYMENT,
                        f"{line.line_no}-PAY",
                        pay_day,
                        line.line_no,
                        amount=_money(paid),
                        note="扣银行手续费 bank charges deducted" if index == 4 else "",
                    ),
                    prefix,
                    AW_SOURCE,
                )
        tags = {
            0: Scenario.PAID,
            1: Scenario.PAID,
            2: Scenario.PAID,
            3: Scenario.PAID,
            4: Scenario.SMALL_BALANCE,
            5: Scenario.PARTLY_PAID,
            6: Scenario.PARTLY_PAID,
            7: Scenario.INVOICE_MISMATCH,
            8: Scenario.UNPAID,
        }
        if index in tags:
            self.tag(tags[index], document)
            return
        self.close(
            closer,
            document,
            "write_off",
            "差额经批准核销 the short payment is written off as agreed with the partner",
            day=pay_day + timedelta(days=3),
        )
        if index == 9:
            self.tag(Scenario.CLOSED_BY_HAND, document)
        elif index == 10:
            document_reopen(
                actor=self.user("supervisor"),
                document=document,
                reason_code="audit_finding",
                remark="审计发现核销未经审批 the write-off lacked approval",
            )
            self.tag(Scenario.CLOSED_THEN_REOPENED, document)
        else:
            first = lines[0]
            self.post(
                document,
                _Event(
                    EventKind.PAYMENT,
                    "1-PAY-LATE",
                    min(self.today, pay_day + timedelta(days=9)),
                    1,
                    amount=min(Decimal(250), (first.planned_amount or Decimal(0)) / 2),
                    note="核销后收到余款 the balance arrived after the write-off",
                ),
                prefix,
                AW_SOURCE,
            )
            self.tag(Scenario.QUARANTINED, document)

    # --- stock counts --------------------------------------------------------------------------

    def stock_counts(self) -> None:
        """Six counts of the finished-goods store, six products each."""
        rows = sorted(table_rows("ProductInventory"), key=lambda r: int(r["ProductID"]))
        unit = self.units[WH_DEPT]
        # Per count: variances by line (index), whether adjustments are posted, lines counted.
        plans: list[tuple[str, dict[int, int], bool, int]] = [
            (Scenario.VARIANCE_POSTED, {}, True, 6),
            (Scenario.VARIANCE_POSTED, {0: -2, 2: 1, 3: -1}, True, 6),
            (Scenario.VARIANCE_UNPOSTED, {1: -2, 4: 3}, False, 6),
            (Scenario.VARIANCE_LARGE, {0: -4, 3: -5}, True, 6),
            (Scenario.NOT_COUNTED, {1: 1}, True, 4),
            (Scenario.CLOSED_BY_HAND, {2: -5}, True, 6),
        ]
        for n, (scenario, variances, post_adjustments, counted) in enumerate(plans, start=1):
            chunk = rows[(n - 1) * 6 : n * 6]
            count_day = self.today - timedelta(days=14 - 2 * n)
            lines = [
                LineInput(
                    line_no=i + 1,
                    planned_qty=_dec(r["Quantity"]),
                    unit_price=_dec(self.products[r["ProductID"]]["StandardCost"]),
                    item=self.item(r["ProductID"]),
                    description=self.products[r["ProductID"]]["Name"],
                )
                for i, r in enumerate(chunk)
            ]
            number = f"SC-AW7-{n:02d}"
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.STOCK_COUNT,
                number=number,
                org_unit=unit,
                document_date=count_day - timedelta(days=1),
                expected_date=count_day,
                lines=lines,
                currency="USD",
                exchange_rate=USD_RATE,
            )
            for i, line in enumerate(lines[:counted]):
                variance = Decimal(variances.get(i, 0))
                self.post(
                    document,
                    _Event(
                        EventKind.COUNT_RESULT,
                        f"{line.line_no}-CNT",
                        count_day,
                        line.line_no,
                        line.planned_qty + variance,
                    ),
                    number,
                    "wms",
                )
                if variance and post_adjustments:
                    self.post(
                        document,
                        _Event(
                            EventKind.STOCK_ADJUSTMENT,
                            f"{line.line_no}-ADJ",
                            count_day + timedelta(days=1),
                            line.line_no,
                            variance,
                            note="盘点差异调整 count variance adjustment",
                        ),
                        number,
                        "wms",
                    )
            if scenario == Scenario.CLOSED_BY_HAND:
                self.close(
                    "keeper",
                    document,
                    "data_correction",
                    "复盘确认：5 件运输损坏已报废 recount confirmed 5 units damaged in transit",
                    day=count_day + timedelta(days=2),
                )
            self.tag(scenario, document)

    # --- project stages ------------------------------------------------------------------------

    def project_stages(self) -> None:
        """Stages of an (invented) assembly-line upgrade; budgets in CNY."""
        unit = self.units[ENG_DEPT]
        stages: list[tuple[str, str, int, list[tuple[str, int, int]]]] = [
            (
                Scenario.ACCEPTED,
                "方案设计 design",
                60,
                [
                    ("需求调研 requirements", 4, 60000),
                    ("布局设计 layout", 6, 120000),
                    ("设计评审 design review", 2, 20000),
                ],
            ),
            (
                Scenario.ACCEPTED,
                "设备采购 equipment purchase",
                5,
                [("招标 tender", 3, 30000), ("设备到货 equipment delivery", 5, 850000)],
            ),
            (
                Scenario.COSTS_PENDING,
                "安装 installation",
                30,
                [("机械安装 mechanical", 8, 240000), ("电气安装 electrical", 6, 160000)],
            ),
            (
                Scenario.OVER_BUDGET,
                "调试 commissioning",
                35,
                [("单机调试 machine tests", 5, 80000), ("联动调试 line test", 3, 60000)],
            ),
            (
                Scenario.TASKS_OPEN,
                "试生产 trial production",
                12,
                [("试生产批次 trial batches", 10, 150000), ("工艺优化 process tuning", 4, 50000)],
            ),
            (
                Scenario.CLOSED_BY_HAND,
                "旧线拆除 old line removal",
                45,
                [("拆除 removal", 8, 90000), ("场地恢复 site restoration", 4, 40000)],
            ),
        ]
        for n, (scenario, title, age, packages) in enumerate(stages, start=1):
            number = f"PS-ASM-{n:02d}"
            start = self.today - timedelta(days=age + 40)
            finish = self.today - timedelta(days=age)
            lines = [
                LineInput(
                    line_no=i + 1,
                    planned_qty=Decimal(tasks),
                    unit_price=_money(Decimal(budget) / tasks),
                    description=f"{title} · {name}",
                    unit="任务 task",
                    planned_amount=Decimal(budget),
                )
                for i, (name, tasks, budget) in enumerate(packages)
            ]
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PROJECT_STAGE,
                number=number,
                org_unit=unit,
                document_date=start,
                expected_date=finish,
                lines=lines,
            )
            for line in lines:
                tasks = line.planned_qty
                budget = line.planned_amount or Decimal(0)
                done = (
                    tasks
                    if scenario != Scenario.TASKS_OPEN
                    else (tasks * 6 / 10).to_integral_value()
                )
                if scenario == Scenario.CLOSED_BY_HAND:
                    done = (tasks * 3 / 8).to_integral_value()
                cost = budget * Decimal("0.95") * done / tasks
                if scenario == Scenario.OVER_BUDGET and line.line_no == 1:
                    cost = budget * Decimal("1.25")
                half = _half(done)
                for suffix, qty, day in (
                    ("TASK-A", half, start + timedelta(days=15)),
                    ("TASK-B", done - half, finish - timedelta(days=2)),
                ):
                    if qty > 0:
                        self.post(
                            document,
                            _Event(
                                EventKind.TASK_COMPLETION,
                                f"{line.line_no}-{suffix}",
                                day,
                                line.line_no,
                                qty,
                            ),
                            number,
                            "pm",
                        )
                pending = scenario == Scenario.COSTS_PENDING and line.line_no == 2
                self.post(
                    document,
                    _Event(
                        EventKind.COST_POSTING,
                        f"{line.line_no}-COST",
                        finish - timedelta(days=1),
                        line.line_no,
                        amount=_money(cost),
                        pending=pending,
                        note="待财务确认 awaiting finance review" if pending else "",
                    ),
                    number,
                    "pm",
                )
            if scenario in (Scenario.ACCEPTED, Scenario.COSTS_PENDING, Scenario.OVER_BUDGET):
                self.post(
                    document,
                    _Event(EventKind.ACCEPTANCE, "ACCEPT", finish, note="验收通过 accepted"),
                    number,
                    "pm",
                )
            if scenario == Scenario.CLOSED_BY_HAND:
                self.close(
                    "keeper",
                    document,
                    "task_cancelled",
                    "旧线保留作备用，剩余拆除任务取消 the old line stays as a backup; "
                    "the remaining removal work is cancelled",
                    day=finish,
                )
            self.tag(scenario, document)

    # --- after the sweep -----------------------------------------------------------------------

    def after_sweep(self) -> None:
        """Business that arrives after the automatic close: quarantined, never lost."""
        for document, order in self.late_returns:
            document.refresh_from_db()
            if document.close_state != CloseState.CLOSED:
                continue
            ship = order.events[0].day
            self.post(
                document,
                _Event(
                    EventKind.RETURN,
                    "1-RET-LATE",
                    min(self.today, ship + timedelta(days=20)),
                    1,
                    Decimal(1),
                    note="结案后客户退货 customer return after the close",
                ),
                f"AW-{order.number}",
                AW_SOURCE,
            )
            self.tag(Scenario.QUARANTINED, document)
        accepted = Document.objects.filter(
            doc_type=DocType.PROJECT_STAGE, number="PS-ASM-01", close_state=CloseState.CLOSED
        ).first()
        if accepted is not None:
            self.post(
                accepted,
                _Event(
                    EventKind.COST_POSTING,
                    "1-COST-LATE",
                    self.today - timedelta(days=1),
                    1,
                    amount=Decimal("3800.00"),
                    note="结案后到达的差旅费 travel cost after close",
                ),
                accepted.number,
                "pm",
            )
            self.tag(Scenario.QUARANTINED, accepted)

    def found_after_sweep(self) -> None:
        from closeout.closing.selectors import documents_ready_to_close

        for document in Document.objects.filter(
            close_state=CloseState.CLOSED, close_kind=CloseKind.AUTO
        ).order_by("doc_type", "number"):
            self.tag(Scenario.AUTO_CLOSED, document)
        for doc_type in DocType.values:
            for document in documents_ready_to_close(doc_type).order_by("number"):
                self.tag(Scenario.READY_WAITING, document)

    def undone_batch(self) -> None:
        """A close batch of three purchase orders that were ready, then its undo (批量撤销):
        they are open again, and the batch page shows "undone by #N". Before the approval
        routes exist, so the undo reopens directly."""
        from closeout.batches.services import batch_create, batch_preview, batch_start, batch_work
        from closeout.batches.undo import batch_undo_create
        from closeout.closing.selectors import documents_ready_to_close

        actor = self.user("supervisor")
        numbers = list(
            documents_ready_to_close(DocType.PURCHASE_ORDER)
            .order_by("number")
            .values_list("number", flat=True)[:3]
        )
        if not numbers:
            return
        job = batch_create(
            actor=actor,
            action="close",
            doc_type=DocType.PURCHASE_ORDER,
            numbers=numbers,
            reason_code="completed",
            remark="演示：误操作的批量结案 demo: a mistaken mass close",
        )
        for step in (job, None):
            step = step or batch_undo_create(actor=actor, job_id=job.pk)
            batch_preview(actor=actor, job=step)
            batch_start(actor=actor, job=step, workers=1)
            batch_work(step.pk)

    def approvals(self) -> None:
        """Approval routes (configured after the direct closes above, as a company would when
        it introduces approvals), a closed accounting period, and requests in the inbox."""
        from closeout.approvals.models import (
            AccountingPeriod,
            ApprovalRoute,
            ApprovalStep,
            ExceptionCondition,
            RequestAction,
        )
        from closeout.approvals.services import close_request_submit, reopen_request_submit

        roles = {role.code: role for role in Role.objects.all()}
        routes = [
            (
                "大额例外结案 Large exception close",
                RequestAction.CLOSE,
                ExceptionCondition.EXCEPTION,
                Decimal(50000),
                None,
                False,
                10,
                ["supervisor", "finance"],
            ),
            (
                "例外结案 Exception close",
                RequestAction.CLOSE,
                ExceptionCondition.EXCEPTION,
                None,
                Decimal(50000),
                False,
                20,
                ["supervisor"],
            ),
            (
                "反结案 Reopen",
                RequestAction.REOPEN,
                ExceptionCondition.ANY,
                None,
                None,
                False,
                10,
                ["finance"],
            ),
            (
                "已关账期间反结案 Reopen in a closed period",
                RequestAction.REOPEN,
                ExceptionCondition.ANY,
                None,
                None,
                True,
                1,
                ["finance"],
            ),
        ]
        for name, action, condition, low, high, closed_period, priority, steps in routes:
            route = ApprovalRoute.objects.create(
                name=name,
                action=action,
                condition=condition,
                min_open_value=low,
                max_open_value=high,
                org_unit=self.units[DEMO_COMPANY],
                for_closed_period=closed_period,
                priority=priority,
            )
            for order, role in enumerate(steps, start=1):
                ApprovalStep.objects.create(
                    route=route,
                    order=order,
                    role=roles[role],
                    name=roles[role].name_zh + " " + roles[role].name_en,
                    sla_hours=24 if order == 1 else 48,
                )
        first_of_month = self.today.replace(day=1)
        last_month_end = first_of_month - timedelta(days=1)
        earlier = last_month_end.replace(day=1) - timedelta(days=1)
        AccountingPeriod.objects.create(
            name=f"{earlier:%Y-%m}",
            company=self.units[DEMO_COMPANY].company_profile,
            start=earlier.replace(day=1),
            end=earlier,
            closed=True,
        )
        vendor = partner_get_or_create(
            code="DEMO-V-APPROVAL", name="演示供应商 Demo Supplier", kind=PartnerKind.SUPPLIER
        )
        item = item_get_or_create(code="DEMO-PART-1", name="演示物料 Demo part")
        for number, qty, price, received, remark in (
            (
                "PO-APPROVAL-1",
                Decimal(100),
                Decimal(80),
                Decimal(60),
                "供应商停产，余量取消 supplier discontinued the part",
            ),
            (
                "PO-APPROVAL-2",
                Decimal(1000),
                Decimal(95),
                Decimal(300),
                "合同终止 contract terminated by the supplier",
            ),
        ):
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PURCHASE_ORDER,
                number=number,
                # PO-APPROVAL-1 waits in the east group, PO-APPROVAL-2 in the west.
                org_unit=self.units[PO_EAST if number.endswith("1") else PO_WEST],
                partner=vendor,
                document_date=self.today - timedelta(days=40),
                expected_date=self.today - timedelta(days=20),
                lines=[LineInput(1, qty, price, item=item)],
            )
            self.post(
                document,
                _Event(EventKind.RECEIPT, "RCV", self.today - timedelta(days=25), 1, received),
                number,
                "DEMO-ERP",
            )
            self.post(
                document,
                _Event(
                    EventKind.INVOICE,
                    "INV",
                    self.today - timedelta(days=24),
                    1,
                    received,
                    received * price,
                ),
                number,
                "DEMO-ERP",
            )
            close_request_submit(
                actor=self.user("buyer"),
                document=document,
                reason_code="supplier_cannot_deliver",
                remark=remark,
            )
            self.tag("close_requested", document)
        # Closed by hand, then the supplier sends a credit note: a reopen request for finance.
        late = document_upsert(
            actor=self.user("erp"),
            doc_type=DocType.PURCHASE_ORDER,
            number="PO-APPROVAL-3",
            org_unit=self.units[PO_WEST],
            partner=vendor,
            document_date=self.today - timedelta(days=30),
            expected_date=self.today - timedelta(days=15),
            lines=[LineInput(1, Decimal(50), Decimal(40), item=item)],
        )
        for kind, suffix, days, qty, amount in (
            (EventKind.RECEIPT, "RCV", 14, Decimal(50), Decimal(0)),
            (EventKind.INVOICE, "INV", 13, Decimal(50), Decimal(2000)),
            (EventKind.PAYMENT, "PAY", 10, Decimal(0), Decimal(2000)),
        ):
            event = _Event(kind, suffix, self.today - timedelta(days=days), 1, qty, amount)
            self.post(late, event, "PO-APPROVAL-3", "DEMO-ERP")
        self.close("buyer", late, "completed", "全部到货 all received")
        reopen_request_submit(
            actor=self.user("buyer"),
            document=late,
            reason_code="invoice_correction",
            remark="供应商开具红字发票需重新核对 the supplier issued a credit note",
        )
        self.tag("reopen_requested", late)


__all__ = [
    "DEMO_COMPANY",
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "PO_EAST",
    "PO_WEST",
    "DemoLogin",
    "DemoReport",
    "Scenario",
    "demo_exists",
    "demo_load",
    "demo_reset",
    "document_states",
]
