"""The `closeout` console commands: output, one-line errors and exit codes.

Most tests call the commands in-process with `call_command` (on the test database); a few run
the real `.venv/bin/closeout` script in a subprocess against a temporary SQLite file, because
only a subprocess shows the exit status and what reaches stderr.
"""

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.audit.models import AuditAction, AuditEvent
from closeout.core.models import OrgUnit
from closeout.core.services import org_unit_create
from closeout.documents.models import BusinessEvent, CloseState, Document, EventStatus, Line
from closeout.documents.services import LineInput, document_upsert, event_post
from tests.audit.test_chain import tampering

PO = "purchase_order"
REPO = Path(__file__).resolve().parents[1]
CLOSEOUT = Path(sys.executable).parent / "closeout"
MANUAL_PO_RULES = (
    "received",
    "not_over_received",
    "invoice_qty_match",
    "invoice_amount_match",
    "paid",
    "no_line_on_hold",
    "events_settled",
)


# --- data, built through the services -------------------------------------------------------


@dataclass
class Scenario:
    company: OrgUnit
    buyer: User  # operator in the purchasing department
    boss: User  # supervisor over the company (includes operator, may reopen)
    erp: User  # integration: posts business events
    nobody: User  # active, no grants


def _po(number: str, org_unit: OrgUnit, received: tuple[str, str], *, pending: str = "") -> None:
    """A purchase order of two lines (10 × 5.00, 4 × 2.50), received, invoiced and paid as
    given, its last activity 30 days ago (past the grace days); `pending` adds a receipt
    waiting for confirmation."""
    today = timezone.localdate()
    old = timezone.now() - timedelta(days=30)
    document = document_upsert(
        actor=None,
        doc_type=PO,
        number=number,
        org_unit=org_unit,
        document_date=today - timedelta(days=40),
        lines=[
            LineInput(line_no=1, planned_qty=Decimal(10), unit_price=Decimal(5)),
            LineInput(line_no=2, planned_qty=Decimal(4), unit_price=Decimal("2.5")),
        ],
    )
    for line_no, qty, price in ((1, received[0], Decimal(5)), (2, received[1], Decimal("2.5"))):
        amount = str(Decimal(qty) * price)
        for kind, q, a in (
            ("receipt", qty, "0"),
            ("invoice", qty, amount),
            ("payment", "0", amount),
        ):
            event_post(
                actor=None,
                document=document,
                kind=kind,
                line_no=line_no,
                external_id=f"{number}-{kind}-{line_no}",
                quantity=q,
                amount=a,
                occurred_at=old,
            )
    if pending:
        event_post(
            actor=None,
            document=document,
            kind="receipt",
            line_no=1,
            quantity=pending,
            external_id=f"{number}-pending",
            pending=True,
            occurred_at=old,
        )


def build_scenario() -> Scenario:
    """Users with grants and three purchase orders: PO-READY (every rule passes), PO-SHORT
    (line 1 short-delivered: an exception rule fails), PO-PENDING (a pending receipt: the
    blocking rule events_settled fails)."""
    company = org_unit_create(code="CO", name="公司 Company")
    purchasing = org_unit_create(code="PUR", name="采购部 Purchasing", parent=company)

    def user(name: str, role: str | None, unit: OrgUnit) -> User:
        person = User.objects.create_user(username=name)  # no password: no slow hashing
        if role:
            grant_create(actor=None, user=person, role=Role.objects.get(code=role), org_unit=unit)
        return person

    scenario = Scenario(
        company=company,
        buyer=user("buyer", "operator", purchasing),
        boss=user("boss", "supervisor", company),
        erp=user("erp", "integration", company),
        nobody=user("nobody", None, company),
    )
    _po("PO-READY", purchasing, ("10", "4"))
    _po("PO-SHORT", purchasing, ("6", "4"))
    _po("PO-PENDING", purchasing, ("10", "4"), pending="1")
    return scenario


@pytest.fixture
def scenario(db: None) -> Scenario:
    return build_scenario()


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def state(number: str) -> str:
    return Document.objects.get(doc_type=PO, number=number).close_state


# --- check ------------------------------------------------------------------------------------


def test_check_prints_every_rule_with_result_and_verdict(scenario: Scenario) -> None:
    out = run("check", PO, "PO-SHORT", "--lang", "en")
    for code in MANUAL_PO_RULES:
        assert code in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1]}
    assert " FAIL " in rows["received"]
    assert rows["received"].rstrip().endswith("1")  # the failing line
    assert "planned=14 fulfilled=10" in rows["received"]  # measured totals
    assert "≥ 98% of planned" in rows["received"]  # threshold from the default policy
    for code in MANUAL_PO_RULES[1:]:
        assert " PASS " in rows[code]
    assert "line 1" in out and "planned=10 fulfilled=6" in out  # the failing line's own values
    assert "what to do next:" in out and "short-delivery reason" in out
    assert out.rstrip().splitlines()[-1].startswith("verdict: exception")
    assert "grace_period" not in out  # an automatic-close rule only


def test_check_verdicts_languages_and_auto_rules(scenario: Scenario) -> None:
    ready = run("check", PO, "PO-READY", "--lang", "en")
    assert "FAIL" not in ready and ready.rstrip().endswith("the document can close")
    assert ready.rstrip().splitlines()[-1].startswith("verdict: ready")
    blocked = run("check", PO, "PO-PENDING", "--lang", "zh", "--auto")
    assert "无待确认或隔离的业务" in blocked and "grace_period" in blocked
    assert blocked.rstrip().splitlines()[-1].startswith("verdict: blocked")
    lines_only = run("check", PO, "PO-SHORT", "--lines", "2", "--lang", "en")
    assert "verdict: ready" in lines_only and "events_settled" not in lines_only


def test_check_bad_input(scenario: Scenario) -> None:
    with pytest.raises(CommandError, match="has no line 7"):
        run("check", PO, "PO-SHORT", "--lines", "1,7")
    with pytest.raises(CommandError, match="--lines: '1,a' is not a list of line numbers"):
        run("check", PO, "PO-SHORT", "--lines", "1,a")
    with pytest.raises(CommandError, match="invalid choice: 'fr'"):
        run("check", PO, "PO-SHORT", "--lang", "fr")
    with pytest.raises(CommandError, match="NUMBER is missing: closeout check TYPE NUMBER"):
        run("check", PO)


def test_check_without_arguments_runs_the_system_checks(db: None) -> None:
    out = StringIO()
    call_command("check", stdout=out)
    assert "System check identified no issues" in out.getvalue()


def test_unknown_type_number_and_user(scenario: Scenario) -> None:
    with pytest.raises(CommandError, match=r"unknown document type 'po'; use one of: purchase_o"):
        run("check", "po", "PO-READY")
    with pytest.raises(CommandError, match="no purchase_order numbered 'PO-NONE'"):
        run("close", PO, "PO-NONE", "--reason", "completed", "--as", "buyer")
    with pytest.raises(CommandError, match="no active user 'ghost'"):
        run("close", PO, "PO-READY", "--reason", "completed", "--as", "ghost")
    scenario.nobody.is_active = False
    scenario.nobody.save()
    with pytest.raises(CommandError, match="no active user 'nobody'"):
        run("hold", PO, "PO-READY", "--reason", "x", "--as", "nobody")
    assert state("PO-READY") == CloseState.OPEN


# --- close and reopen -------------------------------------------------------------------------


def test_close_whole_document(scenario: Scenario) -> None:
    out = run(
        "close", PO, "PO-READY", "--reason", "completed", "--remark", "all done", "--as", "buyer"
    )
    assert "closed purchase_order PO-READY (document): lines 1, 2 closed by buyer" in out
    assert "released value: 0 CNY" in out
    document = Document.objects.get(doc_type=PO, number="PO-READY")
    assert document.close_state == CloseState.CLOSED
    assert (document.close_reason, document.close_remark) == ("completed", "all done")
    assert document.closed_by_id == scenario.buyer.pk
    assert document.close_date == timezone.localdate()
    last = AuditEvent.objects.order_by("-seq").first()
    assert last is not None and last.action == AuditAction.DOCUMENT_CLOSED


def test_close_lines_with_exception_needs_remark_and_releases_value(scenario: Scenario) -> None:
    with pytest.raises(CommandError, match=r"exception rules fail \(received: .*lines 1"):
        run("close", PO, "PO-SHORT", "--reason", "supplier_cannot_deliver", "--as", "buyer")
    assert state("PO-SHORT") == CloseState.OPEN
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    out = run(
        "close",
        PO,
        "PO-SHORT",
        "--reason",
        "supplier_cannot_deliver",
        "--lines",
        "1",
        "--remark",
        "supplier stopped",
        "--date",
        yesterday,
        "--as",
        "buyer",
    )
    assert "closed purchase_order PO-SHORT (lines): lines 1 closed" in out
    assert "released value: 20 CNY" in out  # 4 open units × 5.00
    assert "accepted exceptions/warnings: received (exception)" in out
    assert state("PO-SHORT") == CloseState.OPEN
    line = Line.objects.get(document__number="PO-SHORT", line_no=1)
    assert line.close_state == CloseState.CLOSED and line.released_value == Decimal(20)


def test_close_refused_by_blocking_rule(scenario: Scenario) -> None:
    with pytest.raises(CommandError) as caught:
        run("close", PO, "PO-PENDING", "--reason", "completed", "--remark", "x", "--as", "buyer")
    message = str(caught.value)
    assert "blocking rules fail" in message and "events_settled" in message
    assert caught.value.returncode == 1
    assert state("PO-PENDING") == CloseState.OPEN


def test_close_missing_reason_unknown_reason_and_bad_date(scenario: Scenario) -> None:
    with pytest.raises(CommandError, match="the following arguments are required: --reason"):
        run("close", PO, "PO-READY", "--as", "buyer")
    with pytest.raises(CommandError, match="unknown close reason 'oops'; use one of: completed"):
        run("close", PO, "PO-READY", "--reason", "oops", "--as", "buyer")
    with pytest.raises(CommandError, match=r"--date: '2025-02-30' is not a date \(use YYYY-MM-DD"):
        run(
            "close",
            PO,
            "PO-READY",
            "--reason",
            "completed",
            "--date",
            "2025-02-30",
            "--as",
            "buyer",
        )
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    with pytest.raises(CommandError, match="is in the future"):
        run("close", PO, "PO-READY", "--reason", "completed", "--date", tomorrow, "--as", "buyer")
    assert state("PO-READY") == CloseState.OPEN


def test_no_permission(scenario: Scenario) -> None:
    with pytest.raises(CommandError, match=r"nobody lacks permission 'close\.direct'"):
        run("close", PO, "PO-READY", "--reason", "completed", "--as", "nobody")
    with pytest.raises(CommandError, match=r"erp lacks permission 'document\.hold'"):
        run("hold", PO, "PO-READY", "--reason", "check", "--as", "erp")
    assert state("PO-READY") == CloseState.OPEN


def test_reopen(scenario: Scenario) -> None:
    run(
        "close",
        PO,
        "PO-SHORT",
        "--reason",
        "supplier_cannot_deliver",
        "--remark",
        "gone",
        "--as",
        "buyer",
    )
    assert state("PO-SHORT") == CloseState.CLOSED
    with pytest.raises(CommandError, match=r"buyer lacks permission 'reopen\.approve'"):
        run("reopen", PO, "PO-SHORT", "--reason", "late_delivery", "--as", "buyer")
    with pytest.raises(CommandError, match="the following arguments are required: --reason"):
        run("reopen", PO, "PO-SHORT", "--as", "boss")
    # A receipt arriving while closed is quarantined, then applied by the reopen.
    post = run(
        "post_event",
        PO,
        "PO-SHORT",
        "receipt",
        "--external-id",
        "late-1",
        "--line",
        "1",
        "--quantity",
        "4",
        "--as",
        "erp",
    )
    assert post.startswith("quarantined: receipt late-1 on purchase_order PO-SHORT line 1")
    out = run(
        "reopen", PO, "PO-SHORT", "--reason", "late_delivery", "--remark", "it came", "--as", "boss"
    )
    assert "reopened purchase_order PO-SHORT: lines 1, 2 reopened by boss" in out
    assert "quarantined events applied: 1, still quarantined: 0" in out
    assert state("PO-SHORT") == CloseState.OPEN
    assert Line.objects.get(document__number="PO-SHORT", line_no=1).fulfilled_qty == 10
    with pytest.raises(CommandError, match="is open: cannot reopen"):
        run("reopen", PO, "PO-SHORT", "--reason", "late_delivery", "--as", "boss")


def test_hold_and_release(scenario: Scenario) -> None:
    with pytest.raises(CommandError, match="the following arguments are required: --reason"):
        run("hold", PO, "PO-READY", "--as", "buyer")
    out = run("hold", PO, "PO-READY", "--reason", "price dispute", "--as", "buyer")
    assert "held purchase_order PO-READY by buyer: price dispute" in out
    assert state("PO-READY") == CloseState.ON_HOLD
    with pytest.raises(CommandError, match="on hold"):
        run("close", PO, "PO-READY", "--reason", "completed", "--as", "buyer")
    out = run("release", PO, "PO-READY", "--as", "buyer")
    assert "released purchase_order PO-READY by buyer" in out
    assert state("PO-READY") == CloseState.OPEN
    with pytest.raises(CommandError, match="is open: cannot release"):
        run("release", PO, "PO-READY", "--as", "buyer")

    run("hold", PO, "PO-SHORT", "--reason", "inspect", "--lines", "2", "--as", "buyer")
    assert Line.objects.get(document__number="PO-SHORT", line_no=2).close_state == "on_hold"
    check = run("check", PO, "PO-SHORT", "--lang", "en")
    assert " FAIL " in next(ln for ln in check.splitlines() if ln.startswith("no_line_on_hold"))
    out = run("release", PO, "PO-SHORT", "--lines", "2", "--as", "buyer")
    assert "released lines 2 of purchase_order PO-SHORT" in out
    assert Line.objects.get(document__number="PO-SHORT", line_no=2).close_state == "open"


# --- post-event -------------------------------------------------------------------------------


def test_post_event_applies_once(scenario: Scenario) -> None:
    args = (
        "post_event",
        PO,
        "PO-SHORT",
        "receipt",
        "--external-id",
        "r-77",
        "--line",
        "1",
        "--quantity",
        "4",
        "--at",
        "2025-01-05T10:30",
        "--as",
        "erp",
    )
    assert run(*args).startswith("applied: receipt r-77 on purchase_order PO-SHORT line 1")
    assert run(*args).startswith("duplicate: receipt r-77")
    assert Line.objects.get(document__number="PO-SHORT", line_no=1).fulfilled_qty == 10
    pending = run(
        "post_event",
        PO,
        "PO-SHORT",
        "invoice",
        "--external-id",
        "i-9",
        "--line",
        "2",
        "--quantity",
        "1",
        "--amount",
        "2.5",
        "--pending",
        "--as",
        "erp",
    )
    assert pending.startswith("pending: invoice i-9")
    assert BusinessEvent.objects.get(external_id="i-9").status == EventStatus.PENDING
    with pytest.raises(CommandError, match="--at: 'yesterday' is not a date"):
        run(
            "post_event",
            PO,
            "PO-SHORT",
            "receipt",
            "--external-id",
            "x",
            "--line",
            "1",
            "--at",
            "yesterday",
            "--as",
            "erp",
        )
    with pytest.raises(CommandError, match="quantity: 'ten' is not a number"):
        run(
            "post_event",
            PO,
            "PO-SHORT",
            "receipt",
            "--external-id",
            "x",
            "--line",
            "1",
            "--quantity",
            "ten",
            "--as",
            "erp",
        )
    with pytest.raises(CommandError, match=r"buyer lacks permission 'document\.sync'"):
        run(
            "post_event",
            PO,
            "PO-SHORT",
            "receipt",
            "--external-id",
            "x",
            "--line",
            "1",
            "--as",
            "buyer",
        )


# --- sweep ------------------------------------------------------------------------------------


def _snapshot() -> tuple[list[tuple[str, str]], int]:
    states = list(Document.objects.order_by("number").values_list("number", "close_state"))
    return states, AuditEvent.objects.count()


def _counts(out: str) -> dict[str, int]:
    """The `label  number` lines of the sweep report (counts and failures per rule)."""
    return {
        " ".join(line.split()[:-1]): int(line.split()[-1])
        for line in out.splitlines()
        if line.startswith("  ") and line.split()[-1].isdigit()
    }


def test_sweep_dry_run_changes_nothing_and_sweep_closes_the_ready(scenario: Scenario) -> None:
    before = _snapshot()
    out = run("sweep", "--type", PO, "--dry-run")
    assert _snapshot() == before
    assert out.startswith("DRY RUN of the sweep over purchase_order: nothing was changed")
    counts = _counts(out)
    assert counts["examined"] == 3 and counts["would close"] == 1
    assert counts["exception queue"] == 1 and counts["blocked"] == 1
    assert counts["warning only"] == counts["not yet due"] == counts["policy off"] == 0
    assert counts["purchase_order.received"] == 1  # failures per rule
    assert counts["purchase_order.events_settled"] == 1
    assert "  purchase_order PO-SHORT" in out.split("exception queue:")[-1]  # the queue sample

    out = run("sweep", "--chunk-size", "1")
    assert out.startswith("sweep over all types done in")
    counts = _counts(out)
    assert (counts["examined"], counts["closed"], counts["lines closed"]) == (3, 1, 2)
    assert state("PO-READY") == CloseState.CLOSED
    assert Document.objects.get(number="PO-READY").close_kind == "auto"
    assert state("PO-SHORT") == CloseState.OPEN and state("PO-PENDING") == CloseState.OPEN
    again = _counts(run("sweep"))
    assert (again["examined"], again["closed"]) == (2, 0)


def test_sweep_bad_input(scenario: Scenario) -> None:
    with pytest.raises(CommandError, match="unknown document type 'orders'"):
        run("sweep", "--type", "orders")
    with pytest.raises(CommandError, match="--chunk-size must be at least 1"):
        run("sweep", "--chunk-size", "0")
    with pytest.raises(CommandError, match="--chunk-size: 'many' is not a whole number"):
        run("sweep", "--chunk-size", "many")


# --- audit verify -----------------------------------------------------------------------------


def test_audit_verify_intact_and_broken(scenario: Scenario) -> None:
    out = run("audit", "verify")
    count = AuditEvent.objects.count()
    head = AuditEvent.objects.order_by("-seq").first()
    assert count > 0 and head is not None
    assert out.strip().startswith(f"audit chain intact: {count} events, head {head.hash};")

    victim = AuditEvent.objects.order_by("seq")[2]
    # The append-only triggers refuse UPDATE; switch them off inside this test's transaction
    # only (rolled back with it).
    with tampering(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET reason = %s WHERE seq = %s", ["tampered", victim.seq]
        )
    with pytest.raises(CommandError) as caught:
        run("audit", "verify")
    assert caught.value.returncode == 2
    assert f"audit chain broken at event #{victim.seq}" in str(caught.value)
    assert "modified after it was written" in str(caught.value)
    with pytest.raises(CommandError, match="invalid choice: 'fix'"):
        run("audit", "fix")


# --- the real console script ------------------------------------------------------------------


@dataclass
class Installation:
    env: dict[str, str]
    var_dir: Path

    def closeout(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLOSEOUT), *args],
            env=self.env,
            cwd=REPO,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    """A fresh SQLite database in a temporary var directory, migrated and seeded by the same
    `build_scenario` (the subprocess does not see the test database)."""
    var_dir = tmp_path_factory.mktemp("closeout-var")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        CLOSEOUT_VAR_DIR=str(var_dir),
        PYTHONPATH=str(REPO),
        DJANGO_SETTINGS_MODULE="closeout.settings",
    )
    inst = Installation(env, var_dir)
    migrated = inst.closeout("migrate", "--no-input", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    seed = (
        "import django; django.setup(); from tests.test_cli import build_scenario; build_scenario()"
    )
    seeded = subprocess.run(
        [sys.executable, "-c", seed],
        env=env,
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    return inst


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, never a traceback or a usage block
    assert lines[0].startswith("error: ")
    return lines[0]


def test_script_exit_codes_and_one_line_errors(installation: Installation) -> None:
    ok = installation.closeout("check", PO, "PO-PENDING", "--lang", "en")
    assert ok.returncode == 0 and "verdict: blocked" in ok.stdout  # a report, not a failure

    refused = installation.closeout(
        "close", PO, "PO-PENDING", "--reason", "completed", "--as", "buyer"
    )
    assert refused.returncode == 1
    assert "blocking rules fail: events_settled" in _error_line(refused)

    no_reason = installation.closeout("close", PO, "PO-READY", "--as", "buyer")
    assert no_reason.returncode == 1
    assert _error_line(no_reason) == "error: the following arguments are required: --reason"

    for args, expected in (
        (("check", "po", "X"), "error: unknown document type 'po'; use one of: purchase_order"),
        (("check", PO, "NOPE"), "error: no purchase_order numbered 'NOPE'"),
        (
            ("reopen", PO, "PO-READY", "--reason", "wrong_close", "--as", "ghost"),
            "error: no active user 'ghost'",
        ),
        (
            ("close", PO, "PO-READY", "--reason", "completed", "--as", "nobody"),
            "error: nobody lacks permission 'close.direct'",
        ),
    ):
        result = installation.closeout(*args)
        assert result.returncode == 1
        assert _error_line(result).startswith(expected)

    posted = installation.closeout(
        "post-event",
        PO,
        "PO-SHORT",
        "receipt",
        "--external-id",
        "sub-1",
        "--line",
        "1",
        "--quantity",
        "1",
        "--as",
        "erp",
    )
    assert posted.returncode == 0 and posted.stdout.startswith("applied: receipt sub-1")

    closed = installation.closeout(
        "close", PO, "PO-READY", "--reason", "completed", "--as", "buyer"
    )
    assert closed.returncode == 0 and "closed purchase_order PO-READY (document)" in closed.stdout


def test_script_post_event_conflict_and_refusal_are_one_line(installation: Installation) -> None:
    """The same external id with another quantity is a conflict, a return beyond what was
    received is refused: both exit 1 with one line naming the values (issue 11, item 6)."""
    base = ("post-event", PO, "PO-SHORT")
    first = installation.closeout(
        *base, "receipt", "--external-id", "cf-1", "--line", "1", "--quantity", "1", "--as", "erp"
    )
    assert first.returncode == 0 and first.stdout.startswith("applied: receipt cf-1")
    again = installation.closeout(
        *base, "receipt", "--external-id", "cf-1", "--line", "1", "--quantity", "1", "--as", "erp"
    )
    assert again.returncode == 0 and again.stdout.startswith("duplicate: receipt cf-1")
    changed = installation.closeout(
        *base, "receipt", "--external-id", "cf-1", "--line", "1", "--quantity", "2", "--as", "erp"
    )
    assert changed.returncode == 1
    line = _error_line(changed)
    assert "external id 'cf-1'" in line and "quantity 1 (sent 2)" in line
    too_many = installation.closeout(
        *base, "return", "--external-id", "rt-1", "--line", "1", "--quantity", "999", "--as", "erp"
    )
    assert too_many.returncode == 1
    line = _error_line(too_many)
    assert "PO-SHORT line 1: return rt-1 of quantity 999 is more than received" in line


def test_script_audit_verify_detects_tampering(installation: Installation) -> None:
    intact = installation.closeout("audit", "verify")
    assert intact.returncode == 0 and intact.stdout.startswith("audit chain intact: ")
    database = sqlite3.connect(installation.var_dir / "closeout.sqlite3")
    try:
        (seq,) = database.execute(
            "SELECT seq FROM audit_auditevent ORDER BY seq LIMIT 1 OFFSET 3"
        ).fetchone()
        # The append-only trigger refuses DELETE; whoever can write the file can drop it.
        database.execute("DROP TRIGGER audit_event_append_only_delete")
        database.execute("DELETE FROM audit_auditevent WHERE seq = ?", (seq,))
        database.commit()
    finally:
        database.close()
    broken = installation.closeout("audit", "verify")
    assert broken.returncode == 2
    line = _error_line(broken)
    assert f"audit chain broken at event #{seq + 1}" in line and "deleted" in line


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str, bytes]:
    """Status, Server header and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (local URL)
            return response.status, response.headers.get("Server", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Server", ""), b""


@pytest.fixture
def served(installation: Installation) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [str(CLOSEOUT), "serve", "--port", str(port), "--workers", "1"],
        env=installation.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Wait for the server to accept connections (the loop bounds a hang, it asserts nothing).
        for _ in range(300):
            if process.poll() is not None:
                pytest.fail(
                    f"closeout serve exited: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_runs_gunicorn_with_static_files(installation: Installation, served: str) -> None:
    status, server, body = _get(f"{served}/admin/login/")
    assert status == 200 and b"csrfmiddlewaretoken" in body
    assert server.startswith("gunicorn")  # the production server, not runserver
    status, _server, css = _get(f"{served}/static/admin/css/base.css")
    assert status == 200 and len(css) > 100  # collected into var/static, served by WhiteNoise
    assert (installation.var_dir / "static" / "admin" / "css" / "base.css").exists()


def test_serve_bad_options(installation: Installation) -> None:
    result = installation.closeout("serve", "--workers", "0")
    assert result.returncode == 1
    assert _error_line(result) == "error: --workers must be at least 1, got 0"
