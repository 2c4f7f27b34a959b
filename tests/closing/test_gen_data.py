"""gen-data: the documents it generates ready to close are exactly the ones the sweep closes."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.closing.selectors import close_checklist_for
from closeout.closing.sweep import sweep_run
from closeout.demo.bulk import generate_documents, ready_count
from closeout.documents.models import CloseState, DocType, Document, Line

pytestmark = pytest.mark.django_db

ALL_TYPES = [t.value for t in DocType]


def _generated(doc_type: str, prefix: str = "GEN") -> list[Document]:
    return list(
        Document.objects.filter(doc_type=doc_type, number__startswith=f"{prefix}-").order_by("pk")
    )


def test_ready_count_rounds_half_up() -> None:
    assert ready_count(7, Decimal("0.5")) == 4
    assert ready_count(10, Decimal("0.25")) == 3
    assert ready_count(10, Decimal("0")) == 0
    assert ready_count(3, Decimal("1")) == 3


@pytest.mark.parametrize("doc_type", ALL_TYPES)
def test_sweep_closes_exactly_the_generated_ready_documents(doc_type: str) -> None:
    result = generate_documents(
        documents=30, lines_per_document=3, ready_share=Decimal("0.3"), seed=7, doc_types=[doc_type]
    )
    assert result.ready == ready_count(30, Decimal("0.3")) == 9
    docs = _generated(doc_type)
    assert len(docs) == 30
    assert Line.objects.filter(document__in=docs).count() == 90
    # The checklist (per document) and the sweep (set-based) agree with the generator.
    ready = {d.pk for d in docs if close_checklist_for(d, for_auto=True).verdict == "ready"}
    assert len(ready) == 9

    dry = sweep_run(doc_type=doc_type, dry_run=True)
    assert (dry.examined, dry.closed) == (30, 9)
    assert not Document.objects.filter(close_state=CloseState.CLOSED).exists()

    run = sweep_run(doc_type=doc_type)
    assert run.closed == 9
    assert run.lines_closed == 27
    closed = set(
        Document.objects.filter(close_state=CloseState.CLOSED).values_list("pk", flat=True)
    )
    assert closed == ready
    assert Line.objects.filter(document_id__in=ready, close_state=CloseState.CLOSED).count() == 27
    events = AuditEvent.objects.filter(action=AuditAction.DOCUMENT_CLOSED)
    assert sorted(int(e) for e in events.values_list("object_id", flat=True)) == sorted(ready)
    assert sweep_run(doc_type=doc_type).closed == 0
    assert audit_chain_verify().intact


def test_failing_documents_fail_for_their_generated_reason() -> None:
    result = generate_documents(
        documents=60, lines_per_document=2, ready_share=Decimal("0"), seed=3
    )
    (po,) = result.types
    run = sweep_run(doc_type=DocType.PURCHASE_ORDER, dry_run=True)
    assert run.closed == 0
    assert run.not_due == po.failures.get("in_grace", 0)
    failures = run.rule_failures
    assert failures.get("purchase_order.received", 0) == po.failures.get("short", 0)
    assert failures.get("purchase_order.not_over_received", 0) == po.failures.get("over", 0)
    assert failures.get("purchase_order.paid", 0) == po.failures.get("unpaid", 0)
    assert failures.get("purchase_order.invoice_qty_match", 0) == po.failures.get("not_invoiced", 0)


def test_same_seed_same_data_and_numbers_continue() -> None:
    def measures(prefix: str) -> list[tuple[object, ...]]:
        return list(
            Line.objects.filter(document__number__startswith=f"{prefix}-")
            .order_by("document_id", "line_no")
            .values_list(
                "line_no", "planned_qty", "unit_price", "fulfilled_qty", "invoiced_amount",
                "settled_amount",
            )
        )  # fmt: skip

    generate_documents(documents=5, lines_per_document=2, ready_share=Decimal("0.4"), seed=11)
    first = measures("GEN")
    generate_documents(
        documents=5, lines_per_document=2, ready_share=Decimal("0.4"), seed=11, prefix="AGAIN"
    )
    assert measures("AGAIN") == first
    # The same prefix again: numbers continue after the existing ones, never collide.
    generate_documents(documents=5, lines_per_document=2, ready_share=Decimal("0.4"), seed=12)
    numbers = [d.number for d in _generated(DocType.PURCHASE_ORDER)]
    assert numbers == [f"GEN-{n:09d}" for n in range(1, 11)]
    assert measures("GEN")[10:] != first


def test_command_prints_what_it_created(capsys: pytest.CaptureFixture[str]) -> None:
    call_command(
        "gen_data",
        documents=4,
        lines_per_document=2,
        ready_share="0.5",
        seed=1,
        doc_types=["sales_order", "stock_count"],
        org="BENCH",
    )
    out = capsys.readouterr().out
    assert "sales_order: 4 documents" in out
    assert "stock_count: 4 documents" in out
    assert "ready to close 2" in out
    assert "created 8 documents and 16 lines in" in out
    assert Document.objects.filter(org_unit__code="BENCH").count() == 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ready_share": "1.5"}, "--ready-share: 1.5 is not between 0 and 1"),
        ({"ready_share": "half"}, "--ready-share: 'half' is not a number"),
        ({"documents": 0}, "--documents must be at least 1"),
        ({"lines_per_document": 0}, "--lines-per-document must be at least 1"),
        ({"doc_types": ["invoice"]}, "unknown document type 'invoice'"),
    ],
)
def test_bad_input_is_one_clear_error(options: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"documents": 3, "seed": 1, **options}
    with pytest.raises(CommandError, match=message):
        call_command("gen_data", **arguments)
    assert not Document.objects.exists()
