"""`closeout grant USER ROLE ORG_CODE --reason TEXT --as USERNAME`: give a user a role over an
organisation unit (and its descendants); with --until it is a temporary grant (临时授权)."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.access.management.commands._shared import (
    org_unit_for,
    parse_doc_types,
    role_for,
    user_for,
)
from closeout.access.services import grant_create, grant_create_temporary
from closeout.core.cli import DomainCommand, actor_for, fmt, parse_datetime


class Command(DomainCommand):
    help = "Grant a role over an organisation unit, optionally for a limited time."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", metavar="USER", help="who receives the role")
        parser.add_argument("role", metavar="ROLE", help="role code, e.g. supervisor")
        parser.add_argument("org_unit", metavar="ORG_CODE", help="organisation unit code")
        parser.add_argument(
            "--types", metavar="TYPE,TYPE", default=None, help="only these document types"
        )
        parser.add_argument("--from", dest="valid_from", metavar="ISO", help="start (default now)")
        parser.add_argument("--until", metavar="ISO", help="end: makes a temporary grant")
        parser.add_argument("--reason", required=True, help="why (recorded in the audit log)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        values: dict[str, Any] = {
            "actor": actor,
            "user": user_for(options["user"]),
            "role": role_for(options["role"]),
            "org_unit": org_unit_for(options["org_unit"]),
            "doc_types": parse_doc_types(options["types"]),
            "valid_from": parse_datetime(options["valid_from"], "--from"),
            "reason": options["reason"],
        }
        until = parse_datetime(options["until"], "--until")
        if until is not None:
            grant = grant_create_temporary(valid_until=until, **values)
        else:
            grant = grant_create(**values)
        until_text = fmt(grant.valid_until) if grant.valid_until else "revoked"
        self.stdout.write(
            f"grant #{grant.pk}: {grant.user.get_username()} is {grant.role.code} in "
            f"{grant.org_unit.code} ({', '.join(grant.doc_types) or 'every type'}) "
            f"from {fmt(grant.valid_from)} until {until_text}"
            f", granted by {actor.get_username()}"
        )
