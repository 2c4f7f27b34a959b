"""`closeout audit verify`: walk the audit hash chain (操作日志校验, S13)."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from closeout.audit.services import audit_chain_verify
from closeout.core.cli import DomainCommand

# Not a usage error: the check ran and found tampering.
EXIT_CHAIN_BROKEN = 2


class Command(DomainCommand):
    help = "Audit log tools. `verify`: check the hash chain; exit 2 naming the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("verify",), help="verify: walk the hash chain")

    def handle(self, *args: Any, **options: Any) -> None:
        verdict = audit_chain_verify()
        if not verdict.intact:
            raise CommandError(
                f"audit chain broken at event #{verdict.first_bad_seq} "
                f"({verdict.checked} events intact before it): {verdict.problem}",
                returncode=EXIT_CHAIN_BROKEN,
            )
        self.stdout.write(f"audit chain intact: {verdict.checked} events, head {verdict.head_hash}")
