"""`closeout audit verify|checkpoint|keys|rotate-key`: the audit chain (操作日志校验, S13)."""

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from closeout.audit.keys import audit_key_ring, audit_key_rotate
from closeout.audit.services import audit_chain_verify, audit_checkpoint_write
from closeout.core.cli import DomainCommand

# Not a usage error: the check ran and found tampering.
EXIT_CHAIN_BROKEN = 2


class Command(DomainCommand):
    help = (
        "Audit log tools. `verify`: check the chain, its MACs and the checkpoints; exit 2 naming "
        "the first bad event. `checkpoint`: write a checkpoint of the head (outside the "
        "database). `keys`: list the audit key ids. `rotate-key`: add a key and seal with it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            choices=("verify", "checkpoint", "keys", "rotate-key"),
            help="verify | checkpoint | keys | rotate-key",
        )
        parser.add_argument(
            "--checkpoints",
            type=Path,
            default=None,
            help="verify: a copy of the checkpoint file to check against (default: the "
            "configured CLOSEOUT_AUDIT_CHECKPOINT_FILE)",
        )
        parser.add_argument(
            "--key-id", default="", help="rotate-key: the new key's id (default: k<n+1>)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "checkpoint":
            result = audit_checkpoint_write()
            cp = result.checkpoint
            self.stdout.write(
                f"audit checkpoint #{cp.seq} {cp.hash} at {cp.at} (key {cp.key_id}) "
                f"appended to {result.path}"
            )
            for target in result.sent:
                self.stdout.write(f"  sent: {target}")
            if result.failed:
                raise CommandError("checkpoint not delivered: " + "; ".join(result.failed))
            return
        if action == "keys":
            ring = audit_key_ring()
            self.stdout.write(f"audit keys from {ring.source}:")
            for key_id in ring.ids():
                self.stdout.write(f"  {key_id}{'  (current)' if key_id == ring.current else ''}")
            return
        if action == "rotate-key":
            ring = audit_key_rotate(key_id=options["key_id"])
            self.stdout.write(
                f"audit key {ring.current} added to {ring.source} and now seals new events; "
                f"kept for verifying: {', '.join(k for k in ring.ids() if k != ring.current)}"
            )
            return
        verdict = audit_chain_verify(checkpoints=options["checkpoints"])
        if not verdict.intact:
            where = (
                f"at event #{verdict.first_bad_seq}"
                if verdict.first_bad_seq is not None
                else "in its checkpoints"
            )
            span = (
                f", events #{verdict.bad_range[0]}..#{verdict.bad_range[1]}"
                if verdict.bad_range
                else ""
            )
            raise CommandError(
                f"audit chain broken {where}{span} ({verdict.checked} events intact before "
                f"it): {verdict.problem}",
                returncode=EXIT_CHAIN_BROKEN,
            )
        last = verdict.last_checkpoint
        against = (
            f"; {verdict.checkpoints} checkpoints agree, the latest #{last.seq} of {last.at}"
            if last is not None
            else "; no checkpoint yet (`closeout audit checkpoint` writes one)"
        )
        self.stdout.write(
            f"audit chain intact: {verdict.checked} events, head {verdict.head_hash}{against}"
        )
