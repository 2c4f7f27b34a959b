"""`closeout gen-data`: bulk synthetic documents for benchmarks (deterministic for a seed)."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.core.cli import DomainCommand, whole_number
from closeout.demo.bulk import generate_documents, parse_ready_share, ready_count


class Command(DomainCommand):
    help = (
        "Generate N documents of each given type with K lines each, a share P of them ready to "
        "close (benchmark data; line measures are written directly, not posted as events)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--documents", type=whole_number, required=True, metavar="N")
        parser.add_argument("--lines-per-document", type=whole_number, default=5, metavar="K")
        parser.add_argument(
            "--ready-share", default="0.5", metavar="P", help="share ready to close, 0..1"
        )
        parser.add_argument("--seed", type=whole_number, default=1, metavar="S")
        parser.add_argument(
            "--type",
            dest="doc_types",
            action="append",
            metavar="TYPE",
            help="document type (repeat for several; default purchase_order)",
        )
        parser.add_argument(
            "--org",
            default="",
            metavar="CODE",
            help="organisation unit code (default GEN, or COMPANY-GEN with --company)",
        )
        parser.add_argument(
            "--company",
            default="",
            metavar="CODE",
            help="the company the documents belong to (its unit --org is made if missing)",
        )
        parser.add_argument(
            "--prefix", default="GEN", help="document number prefix; numbers continue after it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        share = parse_ready_share(options["ready_share"])
        result = generate_documents(
            documents=options["documents"],
            lines_per_document=options["lines_per_document"],
            ready_share=share,
            seed=options["seed"],
            doc_types=options["doc_types"],
            org_code=options["org"]
            or (f"{company}-GEN" if (company := options["company"]) else "GEN"),
            company_code=options["company"],
            prefix=options["prefix"],
            progress=lambda text: self.stdout.write(text) if options["verbosity"] > 1 else None,
        )
        self.stdout.write(
            f"org unit {result.org_unit}; partners created {result.partners_created}, "
            f"items created {result.items_created}"
        )
        for t in result.types:
            failures = ", ".join(f"{k} {v}" for k, v in sorted(t.failures.items())) or "none"
            self.stdout.write(
                f"{t.doc_type}: {t.documents:,} documents ({t.first_number} … {t.last_number}), "
                f"{t.lines:,} lines; ready to close {t.ready:,} "
                f"(= {options['documents']} × {share} rounded half up: "
                f"{ready_count(options['documents'], share)}); failing: {failures}"
            )
        rate = result.lines / result.seconds if result.seconds else 0.0
        self.stdout.write(
            f"created {result.documents:,} documents and {result.lines:,} lines "
            f"in {result.seconds:.1f} s ({rate:,.0f} lines/s)"
        )
