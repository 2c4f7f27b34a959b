"""`closeout revoke GRANT_ID --reason TEXT --as USERNAME`: end a grant now."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.access.management.commands._shared import grant_for
from closeout.access.services import grant_revoke
from closeout.core.cli import DomainCommand, actor_for, fmt


class Command(DomainCommand):
    help = "Revoke a grant at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("grant_id", metavar="GRANT_ID", help="grant id (see closeout grants)")
        parser.add_argument("--reason", required=True, help="why (recorded in the audit log)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        grant = grant_revoke(
            actor=actor, grant=grant_for(options["grant_id"]), reason=options["reason"]
        )
        self.stdout.write(
            f"grant #{grant.pk} revoked at {fmt(grant.revoked_at)}: {grant.user.get_username()} "
            f"no longer holds {grant.role.code} in {grant.org_unit.code}"
        )
