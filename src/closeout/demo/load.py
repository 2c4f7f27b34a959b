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

This module orchestrates; each document type (and the organisation, users, policies, reset)
has its own module in `closeout.demo`.
"""

import time
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from closeout.audit.models import AuditEvent
from closeout.closing.models import SweepRun
from closeout.closing.sweep import sweep_run
from closeout.core.models import OrgUnit
from closeout.demo.activity import ActivityBuilder
from closeout.demo.base import (
    DEMO_COMPANY,
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    PO_EAST,
    PO_WEST,
    DemoLogin,
    Scenario,
)
from closeout.demo.org import DEMO_USERNAMES, DEMO_USERS, OrgBuilder, demo_users_qs
from closeout.demo.policies import PolicyBuilder
from closeout.demo.project_stages import ProjectStageBuilder
from closeout.demo.purchase_orders import PurchaseOrderBuilder
from closeout.demo.reset import demo_reset
from closeout.demo.sales_orders import SalesOrderBuilder
from closeout.demo.stock_counts import StockCountBuilder
from closeout.documents.models import BusinessEvent, Document


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


class _Builder(
    OrgBuilder,
    PurchaseOrderBuilder,
    SalesOrderBuilder,
    StockCountBuilder,
    ProjectStageBuilder,
    ActivityBuilder,
    PolicyBuilder,
):
    def build(self) -> None:
        self.organisation()
        self.people()
        self.purchase_orders()
        self.sales_orders()
        self.stock_counts()
        self.project_stages()
        self.sweep = sweep_run()
        self.after_sweep()
        self.found_after_sweep()
        self.undone_batch()
        # After the ready ones are listed: closing for receiving accepts its shortfall.
        self.closed_for_receiving()
        self.approvals()
        self.archived_last_year()
        self.us_company()


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
    users = {u.get_username(): u for u in demo_users_qs()}
    return [
        DemoLogin(u.username, u.name, u.scope, DEMO_PASSWORD if u.username in users else None)
        for u in DEMO_USERS
    ]


__all__ = [
    "DEMO_COMPANY",
    "DEMO_EMAIL_DOMAIN",
    "DEMO_PASSWORD",
    "DEMO_USERNAMES",
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
