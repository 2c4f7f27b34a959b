"""`closeout grants [USER]`: the grants in force now (everyone's, or one user's)."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.access.management.commands._shared import user_for
from closeout.access.models import Grant
from closeout.access.selectors import grants_of
from closeout.core.cli import DomainCommand, fmt, table


class Command(DomainCommand):
    help = "List the grants in force now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", nargs="?", metavar="USER", help="only this user's grants")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["user"]:
            grants = grants_of(user_for(options["user"]))
        else:
            grants = list(
                Grant.objects.active().select_related("user", "role", "org_unit", "granted_by")
            )
        grants.sort(key=lambda g: (g.user.get_username(), g.pk))
        rows = [
            (
                f"#{g.pk}",
                g.user.get_username(),
                g.role.code,
                g.org_unit.code,
                ",".join(g.doc_types) or "all",
                fmt(g.valid_from),
                fmt(g.valid_until) if g.valid_until else "—",
                g.granted_by.get_username() if g.granted_by else "(installer)",
                g.reason or "—",
            )
            for g in grants
        ]
        headers = ("id", "user", "role", "org unit", "types", "from", "until", "by", "reason")
        self.stdout.write("\n".join([*table(headers, rows), f"{len(rows)} grant(s) in force"]))
