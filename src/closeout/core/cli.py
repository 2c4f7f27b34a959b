"""Shared parts of the `closeout` commands: one-line errors, `--as USERNAME`, parsing, tables."""

import argparse
import contextlib
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    handle_default_options,
)
from django.db import DatabaseError, connections
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.core.errors import DomainError, InvalidInput, NotFound
from closeout.core.inputs import check_ascii_digits, check_date, is_digits, parse_int
from closeout.core.inputs import parse_date as parse_date_text

# Exit codes: 1 for bad input, refusals and rule failures; commands that report a finding
# (audit verify) use their own.
EXIT_ERROR = 1


def one_line(text: str) -> str:
    return " ".join(text.split())


class DomainCommand(BaseCommand):
    """Base of closeout's commands: every DomainError, CommandError and argument error becomes
    one line `error: <message>` on stderr and a non-zero exit, never a traceback."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Argument errors raise CommandError (printed as one line below) instead of argparse's
        # usage block with exit status 2.
        parser.called_from_command_line = False
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        self._called_from_command_line = True
        traceback = "--traceback" in argv
        try:
            parser = self.create_parser(argv[0], argv[1])
            options = parser.parse_args(argv[2:])
            cmd_options = vars(options)
            args = cmd_options.pop("args", ())
            handle_default_options(options)
            self.execute(*args, **cmd_options)
        except CommandError as exc:
            if traceback:
                raise
            message = str(exc).removeprefix("Error: ")
            self.stderr.write(f"error: {one_line(message)}")
            sys.exit(exc.returncode)
        except DatabaseError as exc:
            if traceback:
                raise
            self.stderr.write(f"error: database: {one_line(str(exc))}")
            sys.exit(EXIT_ERROR)
        finally:
            with contextlib.suppress(ImproperlyConfigured):
                connections.close_all()

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except DomainError as exc:
            raise CommandError(exc.message, returncode=EXIT_ERROR) from exc

    # --- shared arguments -------------------------------------------------------------------

    @staticmethod
    def add_document_arguments(parser: CommandParser) -> None:
        parser.add_argument("doc_type", metavar="TYPE", help="document type, e.g. purchase_order")
        parser.add_argument("number", metavar="NUMBER", help="document number")
        parser.add_argument(
            "--company",
            metavar="CODE",
            default="",
            help="company code; needed only when the number exists in several companies",
        )

    @staticmethod
    def add_actor_argument(parser: CommandParser) -> None:
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            required=True,
            help="the user who acts (permissions are checked against their grants)",
        )

    @staticmethod
    def add_lines_argument(parser: CommandParser, help_text: str) -> None:
        parser.add_argument("--lines", metavar="1,2", default=None, help=help_text)


def actor_for(username: str) -> AbstractBaseUser:
    """The active user named by `--as`."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(
            gettext_noop("no active user '%(username)s'"),
            details={"field": "as"},
            params={"username": username},
        )
    return user


def parse_lines(value: str | None, option: str = "--lines") -> list[int] | None:
    """'1,2, 5' -> [1, 2, 5]; None stays None (the whole document)."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    numbers: list[int] = []
    for part in parts:
        if not is_digits(part) or len(part) > 9 or int(part) <= 0:
            raise InvalidInput(
                gettext_noop("%(option)s: '%(value)s' is not a list of line numbers such as 1,2"),
                details={"field": option},
                params={"option": option, "value": value},
            )
        numbers.append(int(part))
    if not numbers:
        raise InvalidInput(
            gettext_noop("%(option)s: no line number given"),
            details={"field": option},
            params={"option": option},
        )
    return list(dict.fromkeys(numbers))


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    return parse_date_text(value, field=option)


def parse_datetime(value: str | None, option: str) -> datetime | None:
    """ISO date or date-time; a naive value is taken in the configured time zone."""
    if value is None:
        return None
    check_ascii_digits(value, field=option)
    try:
        moment = datetime.fromisoformat(value.strip())
        check_date(moment.date(), field=option)
    except ValueError as exc:
        raise InvalidInput(
            gettext_noop(
                "%(option)s: '%(value)s' is not a date or date-time (use YYYY-MM-DD[THH:MM])"
            ),
            details={"field": option},
            params={"option": option, "value": value},
        ) from exc
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def whole_number(text: str) -> int:
    """The `type` of every whole-number argument: ASCII digits only (int() also reads "١٢"),
    within what the database stores."""
    try:
        return parse_int(text, field="value", minimum=-(2**63), maximum=2**63 - 1)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a whole number written with the digits 0-9"
        ) from exc


def positive_int(value: int, option: str) -> int:
    if value <= 0:
        raise InvalidInput(
            gettext_noop("%(option)s must be at least 1, got %(value)s"),
            details={"field": option},
            params={"option": option, "value": value},
        )
    return value


# --- printing ---------------------------------------------------------------------------------


def fmt(value: object) -> str:
    """A value as people read it: decimals without exponent or trailing zeros, local times."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, float):
        return fmt(Decimal(str(value)))
    if isinstance(value, datetime):
        shown = timezone.localtime(value) if timezone.is_aware(value) else value
        return shown.strftime("%Y-%m-%d %H:%M")
    return str(value)


def fmt_lines(numbers: Iterable[int]) -> str:
    return ", ".join(str(n) for n in numbers) or "—"


def fmt_measures(values: dict[str, Any]) -> str:
    return " ".join(f"{name}={fmt(value)}" for name, value in values.items()) or "—"


def display_width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """Rows as aligned text columns under a header line."""
    cells = [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    out = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out.extend(
        "  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
    return out


def key_values(pairs: Sequence[tuple[str, object]], indent: str = "  ") -> list[str]:
    """`label  value` lines with the values aligned."""
    width = max((display_width(k) for k, _ in pairs), default=0)
    return [
        f"{indent}{_pad(k, width)}  {fmt(v) if not isinstance(v, str) else v}" for k, v in pairs
    ]
