"""`closeout token create USER [--days N] [--name NAME]` / `token revoke ID` / `token list USER`:
API tokens for ERP integrations and scripts. The token is printed once; only its hash is kept."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from closeout.access.selectors import user_by_name
from closeout.api.models import ApiToken
from closeout.api.services import api_token_create, api_token_revoke
from closeout.core.cli import DomainCommand, table, whole_number
from closeout.core.inputs import is_digits


class Command(DomainCommand):
    help = (
        "create USER [--days N] [--name NAME]: a new API token, printed once. "
        "revoke ID: revoke a token. list USER: a user's tokens (never the secret)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("create", "revoke", "list"))
        parser.add_argument("target", help="USER for create/list, token ID for revoke")
        parser.add_argument(
            "--days", type=whole_number, default=None, metavar="N", help="expires after"
        )
        parser.add_argument("--name", default="", help="what the token is for")

    def handle(self, *args: Any, **options: Any) -> None:
        action, target = options["action"], options["target"]
        if action == "revoke":
            if not is_digits(str(target)) or len(str(target)) > 18:
                raise CommandError(f"token id must be a number, got '{target}'")
            token = api_token_revoke(actor=None, token_id=int(target))
            self.stdout.write(f"API token #{token.pk} ({token.prefix}…) revoked")
            return
        user = user_by_name(target)
        if action == "list":
            rows = [
                (
                    t.pk,
                    t.prefix + "…",
                    t.name,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at,
                    t.last_used_at,
                )
                for t in ApiToken.objects.filter(user_id=user.pk).order_by("pk")
            ]
            header = ("id", "prefix", "name", "created", "expires", "revoked", "last used")
            self.stdout.write("\n".join(table(header, rows)))
            return
        new = api_token_create(actor=None, user=user, name=options["name"], days=options["days"])
        expiry = (
            f", expires {new.token.expires_at:%Y-%m-%d %H:%M %Z}" if new.token.expires_at else ""
        )
        self.stderr.write(
            f"API token #{new.token.pk} for {user.get_username()}{expiry}. "
            "It is shown only now; store it safely."
        )
        self.stdout.write(new.raw)
