"""The README recipe "How to add a document type", followed by a type that exists only in this
test (a tool loan, 工具借用): its code joins the one list of types, its events move its lines'
measures, its rules decide its close, and a document of it closes by hand and by the sweep."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F

from closeout.closing import rules as r
from closeout.closing.models import Severity
from closeout.closing.selectors import close_checklist_for
from closeout.closing.services import document_close
from closeout.closing.sweep import sweep_run
from closeout.closing.tasks import sweep_each_type_task
from closeout.closing.types import CloseSpec, close_spec_register, close_spec_unregister
from closeout.core.doctypes import doc_type_codes, doc_type_known
from closeout.core.errors import InvalidInput
from closeout.documents.models import CloseState, DocType, EventKind
from closeout.documents.types import DocTypeSpec, Effect, spec_for, spec_register, spec_unregister
from tests.factories import Org, lenient, make_document, post, set_policy

pytestmark = pytest.mark.django_db

TOOL_LOAN = "tool_loan"

SPEC = DocTypeSpec(
    code=TOOL_LOAN,  # a type beyond DocType, on purpose
    label_zh="工具借用",
    label_en="Tool loan",
    effects={EventKind.RETURN: (Effect("fulfilled_qty", "quantity"),)},
    measure_names={"fulfilled_qty": "returned quantity"},
)
CLOSE = CloseSpec(
    rules=(
        r.Rule(
            code="all_returned",
            label_zh="工具已全部归还",
            label_en="Every tool returned",
            severity=Severity.BLOCKING,
            scope=r.Scope.LINE,
            failing=lambda p: r.less_than(F("fulfilled_qty"), F("planned_qty")),
            measures=lambda p: {"lent": F("planned_qty"), "returned": F("fulfilled_qty")},
            threshold=lambda p: "returned = lent, per line",
            hint_zh="等待归还其余工具。",
            hint_en="Wait for the remaining tools.",
        ),
        r.events_settled(),
        r.grace_period(),
    ),
    released_qty=lambda: r.dec(0),
    released_value=lambda: r.dec(0),
)


@pytest.fixture
def tool_loan() -> Iterator[str]:
    spec_register(SPEC)
    close_spec_register(TOOL_LOAN, CLOSE)
    try:
        yield TOOL_LOAN
    finally:
        close_spec_unregister(TOOL_LOAN)
        spec_unregister(TOOL_LOAN)


def test_an_unregistered_type_is_refused() -> None:
    assert not doc_type_known(TOOL_LOAN)
    with pytest.raises(InvalidInput, match="unknown document type 'tool_loan'"):
        spec_for(TOOL_LOAN)


def test_the_one_list_starts_with_the_built_in_types(tool_loan: str) -> None:
    assert doc_type_codes() == [*DocType.values, TOOL_LOAN]
    assert spec_for(tool_loan) is SPEC


def test_a_document_of_a_registered_type_closes_by_hand(
    tool_loan: str, org: Org, operator: User
) -> None:
    set_policy(tool_loan)
    doc = make_document(tool_loan, org.dept_a, [(3, 10)])
    assert close_checklist_for(doc).verdict == "blocked"
    post(doc, EventKind.RETURN, quantity=3)
    assert doc.lines.get().fulfilled_qty == Decimal(3)
    assert close_checklist_for(doc).verdict == "ready"
    result = document_close(actor=operator, document=doc, reason_code="completed")
    assert result.header_closed
    doc.refresh_from_db()
    assert doc.close_state == CloseState.CLOSED


def test_the_sweep_closes_a_registered_type(tool_loan: str, org: Org) -> None:
    lenient(tool_loan)
    doc = make_document(tool_loan, org.dept_a, [(2, 10)])
    post(doc, EventKind.RETURN, quantity=2)
    run = sweep_run(doc_type=tool_loan)
    assert run.closed == 1
    doc.refresh_from_db()
    assert (doc.close_state, doc.close_kind) == (CloseState.CLOSED, "auto")


def test_the_hourly_beat_entry_sweeps_every_type(
    tool_loan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(
        "closeout.closing.tasks.send_task", lambda task, *args: sent.append((task.name, args))
    )
    assert settings.CELERY_BEAT_SCHEDULE["sweep"]["task"] == sweep_each_type_task.name
    assert sweep_each_type_task.run() == doc_type_codes()
    assert sent == [("closeout.sweep", (code,)) for code in [*DocType.values, tool_loan]]
