"""`closeout user create USERNAME [--email E] [--name N] [--superuser] [--as USER]` and
`closeout user set-password USERNAME [--as USER]`: the audited way to create accounts and set
passwords (the admin's user pages are read-only). The password is read from the terminal (asked
twice) or, when standard input is not a terminal, from its first line; never from the command
line, where other users of the machine could see it. It must pass the password policy."""

import getpass
import sys
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError, CommandParser

from closeout.access.accounts import password_check, user_create, user_password_set
from closeout.access.selectors import user_by_name
from closeout.core.cli import DomainCommand, actor_for
from closeout.core.errors import InvalidInput


class Command(DomainCommand):
    help = (
        "create USERNAME: a new user; set-password USERNAME: set a user's password. The "
        "password is asked for (or read from standard input) and must pass the password policy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("create", "set-password"))
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument("--email", default="", help="e-mail address (create)")
        parser.add_argument("--name", default="", help="name shown in the workbench (create)")
        parser.add_argument(
            "--superuser", action="store_true", help="may open the (read-only) admin (create)"
        )
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            default=None,
            help="the user who acts (needs access.manage, except for their own password); "
            "without it the server's operator acts, as with `closeout token`",
        )

    def _password(self, user: AbstractBaseUser | None) -> str:
        if not sys.stdin.isatty():
            line = sys.stdin.readline()
            if not line.strip():
                raise CommandError("no password on standard input")
            return line.rstrip("\r\n")
        while True:
            first = getpass.getpass("Password: ")
            if first != getpass.getpass("Password (again): "):
                self.stderr.write("the two passwords differ; try again")
                continue
            try:
                password_check(first, user)
            except InvalidInput as exc:
                self.stderr.write(exc.message)
                continue
            return first

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"]) if options["as_user"] else None
        if options["action"] == "create":
            user = user_create(
                actor=actor,
                username=options["username"],
                password=self._password(None),
                email=options["email"],
                name=options["name"],
                superuser=options["superuser"],
            )
            kind = "superuser" if options["superuser"] else "user"
            self.stdout.write(
                f"{kind} {user.get_username()} created; give it a role with `closeout grant`"
            )
            return
        user = user_by_name(options["username"])
        user_password_set(actor=actor, user=user, password=self._password(user))
        self.stdout.write(f"password of {user.get_username()} set")
