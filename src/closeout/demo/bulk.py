"""Bulk synthetic documents for benchmarks (`closeout gen-data`).

Writes documents and lines with their progress measures directly (COPY on PostgreSQL, batched
multi-row inserts on SQLite), not through event posting: this feeds the sweep benchmark, it is
not a way to enter business data. For a seed the generated values are always the same. A share
of the documents of each type is *ready to close* under the policy that governs them (every
rule passes, the grace days have passed); the others fail one rule the way real documents do
(short-received, unpaid, invoice mismatch, open return, not counted, inside the grace days…).
The failures are large (half a line missing, 30% invoice difference), so they fail under any
policy whose tolerances stay below that; the ready ones pass under any tolerance.

This module holds the generator and its master data; the values of one line are in
`bulk_lines`, the writing of rows in `bulk_rows`.
"""

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.closing.policies import policy_for
from closeout.core.companies import company_get, company_of
from closeout.core.errors import InvalidInput
from closeout.core.models import Company, Item, OrgUnit, Partner, PartnerKind
from closeout.core.services import org_unit_get_or_create
from closeout.demo.bulk_lines import FAILURES, Limits, line_values
from closeout.demo.bulk_rows import RowWriter, db_date, db_datetime, row_defaults
from closeout.documents.models import CloseState, DocType, Document, Line
from closeout.documents.types import spec_for

SOURCE_SYSTEM = "gen-data"
NUMBER_DIGITS = 9
PARTNERS = 200
ITEMS = 1000
BATCH_DOCUMENTS = 10_000
FOREIGN_SHARE = 0.1  # documents in USD, to exercise the company-currency conversion
USD_RATE = "7.12345678"


@dataclass
class TypeResult:
    doc_type: str
    documents: int = 0
    lines: int = 0
    ready: int = 0
    first_number: str = ""
    last_number: str = ""
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class GenResult:
    org_unit: str
    partners_created: int
    items_created: int
    types: list[TypeResult]
    seconds: float

    @property
    def documents(self) -> int:
        return sum(t.documents for t in self.types)

    @property
    def lines(self) -> int:
        return sum(t.lines for t in self.types)

    @property
    def ready(self) -> int:
        return sum(t.ready for t in self.types)


def ready_count(documents: int, ready_share: Decimal) -> int:
    """How many of `documents` are generated ready to close: N × P rounded half up."""
    return int((Decimal(documents) * ready_share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_ready_share(value: str | Decimal) -> Decimal:
    try:
        share = Decimal(str(value).strip())
    except ArithmeticError as exc:
        raise InvalidInput(
            f"--ready-share: '{value}' is not a number between 0 and 1",
            details={"field": "ready_share"},
        ) from exc
    if not share.is_finite() or share < 0 or share > 1:
        raise InvalidInput(
            f"--ready-share: {value} is not between 0 and 1", details={"field": "ready_share"}
        )
    return share


# --- master data ---------------------------------------------------------------------------


def _gen_org(org_code: str, company_code: str) -> OrgUnit:
    """The unit the documents go to: with a company, a unit of that company."""
    if not company_code:
        return org_unit_get_or_create(code=org_code, name=f"{org_code} (gen-data)")
    company = company_get(company_code)
    org = org_unit_get_or_create(code=org_code, name=f"{org_code} (gen-data)", parent=company.unit)
    if company_of(org) != company:
        raise InvalidInput(
            f"--org: unit '{org_code}' belongs to company {company_of(org).code}, "
            f"not {company_code}",
            details={"field": "org"},
        )
    return org


def _master_data(
    prefix: str, org_code: str, company_code: str = ""
) -> tuple[OrgUnit, list[int], list[int], int, int]:
    org = _gen_org(org_code, company_code)
    partner_codes = [f"{prefix}-P{i:04d}" for i in range(1, PARTNERS + 1)]
    before = Partner.objects.filter(code__in=partner_codes).count()
    Partner.objects.bulk_create(
        [
            Partner(code=code, name=f"Partner {code}", kind=PartnerKind.BOTH)
            for code in partner_codes
        ],
        ignore_conflicts=True,
    )
    partners = list(
        Partner.objects.filter(code__in=partner_codes).order_by("code").values_list("id", flat=True)
    )
    item_codes = [f"{prefix}-I{i:05d}" for i in range(1, ITEMS + 1)]
    items_before = Item.objects.filter(code__in=item_codes).count()
    Item.objects.bulk_create(
        [Item(code=code, name=f"Item {code}") for code in item_codes], ignore_conflicts=True
    )
    items = list(
        Item.objects.filter(code__in=item_codes).order_by("code").values_list("id", flat=True)
    )
    return org, partners, items, len(partners) - before, len(items) - items_before


def _next_number(doc_type: str, prefix: str, company: Company) -> int:
    """Numbers continue after the highest one this prefix already has for the type in the
    company (numbers are unique per company)."""
    pattern = rf"^{prefix}-[0-9]{{{NUMBER_DIGITS}}}$"
    top = Document.objects.filter(
        company=company, doc_type=doc_type, number__regex=pattern
    ).aggregate(m=Max("number"))["m"]
    return int(top.rsplit("-", 1)[1]) + 1 if top else 1


# --- the generator -----------------------------------------------------------------------------


def _foreign(base_currency: str) -> tuple[str, Decimal]:
    """The foreign currency of some documents and its rate to the company's base currency."""
    if base_currency == "USD":
        return "CNY", (1 / Decimal(USD_RATE)).quantize(Decimal("0.00000001"))
    return "USD", Decimal(USD_RATE)


def _plan(documents: int, ready: int, doc_type: str, rng: random.Random) -> Iterator[str | None]:
    """For each document in order, None (ready) or its failure mode."""
    ready_at = set(rng.sample(range(documents), ready))
    modes = FAILURES[doc_type]
    for i in range(documents):
        yield None if i in ready_at else modes[rng.randrange(len(modes))]


def _generate_type(
    *,
    doc_type: str,
    documents: int,
    lines_per_document: int,
    ready: int,
    seed: int,
    prefix: str,
    org: OrgUnit,
    partners: list[int],
    items: list[int],
    now: datetime,
    progress: Callable[[str], None] | None,
) -> TypeResult:
    """Write `documents` documents of one type with their lines by COPY, in batches, with the share
    `ready` ready to close and the rest failing one rule each (in turns), so that `gen-data` and
    the benchmarks get exactly the mix they ask for. Long because each failure kind sets its own
    line and header values in the same pass over the rows."""
    rng = random.Random(f"{seed}:{doc_type}")  # noqa: S311 (seeded test data, not secrets)
    policy = policy_for(doc_type, org)
    limits = Limits.of(policy)
    result = TypeResult(doc_type=doc_type, ready=ready)
    company = company_of(org)
    foreign_currency, foreign_rate = _foreign(company.base_currency)
    start = _next_number(doc_type, prefix, company)
    docs = RowWriter(Document)
    lines = RowWriter(Line)
    doc_given = {
        "doc_type", "number", "company_id", "org_unit_id", "partner_id", "document_date",
        "expected_date", "currency", "exchange_rate", "total_amount", "total_amount_company",
        "source_system", "external_id", "close_state", "last_activity_at", "accepted_on",
        "created_at", "state_changed_at",
    }  # fmt: skip
    doc_defaults = row_defaults(docs.fields, doc_given)
    line_probe = line_values(doc_type, random.Random(0), None, limits)  # noqa: S311
    line_given = {"document_id", "line_no", "item_id", "description", "close_state", *line_probe}
    line_defaults = row_defaults(lines.fields, line_given)
    now_db = db_datetime(now)
    plan = list(_plan(documents, ready, doc_type, rng))
    today = timezone.localdate(now)
    for batch_start in range(0, documents, BATCH_DOCUMENTS):
        batch = plan[batch_start : batch_start + BATCH_DOCUMENTS]
        ids = docs.reserve_ids(len(batch))
        doc_rows: list[list[Any]] = []
        line_rows: list[list[Any]] = []
        line_ids = lines.reserve_ids(len(batch) * lines_per_document)
        next_line = 0
        for offset, (doc_id, failure) in enumerate(zip(ids, batch, strict=True)):
            n = start + batch_start + offset
            number = f"{prefix}-{n:0{NUMBER_DIGITS}d}"
            if failure is not None:
                result.failures[failure] = result.failures.get(failure, 0) + 1
            # Which line fails; "in_grace" and "no_acceptance" concern the whole document.
            bad_line = rng.randrange(lines_per_document)
            total = Decimal(0)
            for line_no in range(1, lines_per_document + 1):
                line_failure = failure if line_no - 1 == bad_line else None
                if failure in ("in_grace", "no_acceptance"):
                    line_failure = None
                values = line_values(doc_type, rng, line_failure, limits)
                total += Decimal(values["planned_amount"])
                row = {
                    **line_defaults,
                    **values,
                    "id": line_ids[next_line],
                    "document_id": doc_id,
                    "line_no": line_no,
                    "item_id": items[rng.randrange(len(items))],
                    "description": "",
                    "close_state": CloseState.OPEN.value,
                }
                next_line += 1
                line_rows.append(lines.adapt(row))
            age = rng.randint(0, 60)
            if failure == "in_grace" and limits.grace_days > 0:
                last_activity = now - timedelta(hours=1 + rng.randrange(limits.grace_days * 20))
            else:
                last_activity = now - timedelta(days=limits.grace_days + 1 + age, hours=1)
            doc_date = timezone.localdate(last_activity) - timedelta(days=rng.randint(5, 90))
            foreign = rng.random() < FOREIGN_SHARE
            rate = foreign_rate if foreign else Decimal(1)
            accepted = None
            if doc_type == DocType.PROJECT_STAGE and failure != "no_acceptance":
                accepted = min(today, timezone.localdate(last_activity))
            row = {
                **doc_defaults,
                "id": doc_id,
                "doc_type": doc_type,
                "number": number,
                "company_id": company.pk,
                "org_unit_id": org.pk,
                "partner_id": partners[rng.randrange(len(partners))],
                "document_date": db_date(doc_date),
                "expected_date": db_date(doc_date + timedelta(days=14)),
                "currency": foreign_currency if foreign else company.base_currency,
                "exchange_rate": str(rate),
                "total_amount": str(total),
                "total_amount_company": str(
                    (total * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                ),
                "source_system": SOURCE_SYSTEM,
                "external_id": "",
                "close_state": CloseState.OPEN.value,
                "last_activity_at": db_datetime(last_activity),
                "accepted_on": db_date(accepted),
                "created_at": now_db,
                "state_changed_at": None,
            }
            doc_rows.append(docs.adapt(row))
            if offset == 0 and batch_start == 0:
                result.first_number = number
            result.last_number = number
        docs.write(doc_rows)
        lines.write(line_rows)
        result.documents += len(batch)
        result.lines += len(line_rows)
        if progress is not None:
            progress(f"  {doc_type}: {result.documents:,}/{documents:,} documents")
    return result


def generate_documents(
    *,
    documents: int,
    lines_per_document: int,
    ready_share: Decimal,
    seed: int,
    doc_types: list[str] | None = None,
    org_code: str = "GEN",
    prefix: str = "GEN",
    progress: Callable[[str], None] | None = None,
    company_code: str = "",
) -> GenResult:
    """Generate `documents` documents of each type in `doc_types` (default: purchase orders),
    `lines_per_document` lines each, of which `ready_count(documents, ready_share)` are ready to
    close. All in one transaction; one audit event records the generation."""
    if documents < 1:
        raise InvalidInput(f"--documents must be at least 1, got {documents}")
    if lines_per_document < 1:
        raise InvalidInput(f"--lines-per-document must be at least 1, got {lines_per_document}")
    ready_share = parse_ready_share(ready_share)
    types = list(dict.fromkeys(doc_types or [DocType.PURCHASE_ORDER.value]))
    for doc_type in types:
        spec_for(doc_type)  # a clear error for an unknown type
    if not prefix or not prefix.replace("_", "").isalnum():
        raise InvalidInput(f"--prefix: '{prefix}' must be letters, digits or _")
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        org, partners, items, partners_created, items_created = _master_data(
            prefix, org_code, company_code
        )
        results = [
            _generate_type(
                doc_type=doc_type,
                documents=documents,
                lines_per_document=lines_per_document,
                ready=ready_count(documents, ready_share),
                seed=seed,
                prefix=prefix,
                org=org,
                partners=partners,
                items=items,
                now=now,
                progress=progress,
            )
            for doc_type in types
        ]
        audit_record(
            actor=None,
            action=AuditAction.DOCUMENT_CREATED,
            object_type=AuditObject.GEN_DATA,
            object_id=prefix,
            object_repr=f"gen-data {prefix} seed {seed}",
            data={
                "seed": seed,
                "org_unit": org.code,
                "types": {
                    r.doc_type: {
                        "documents": r.documents,
                        "lines": r.lines,
                        "ready": r.ready,
                        "numbers": f"{r.first_number}…{r.last_number}",
                    }
                    for r in results
                },
            },
            reason="synthetic benchmark data (gen-data)",
        )
    if connection.vendor == "postgresql":
        # Fresh statistics, so the planner sees the new rows before the first sweep.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Document._meta.db_table}, {Line._meta.db_table}")
    return GenResult(
        org_unit=org.code,
        partners_created=partners_created,
        items_created=items_created,
        types=results,
        seconds=time.perf_counter() - started,
    )
