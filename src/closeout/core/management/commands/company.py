"""`closeout company list`: one company a line, its code first, then name, base currency, time
zone and fiscal year start month (tab-separated). `closeout company create CODE --name N
--currency CUR [--time-zone TZ] [--fiscal-year-start M] [--as USER]`: a new company (a new root
organisation unit), audited; with `--as` the user needs access.manage over every company."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from closeout.core.cli import DomainCommand, actor_for, whole_number
from closeout.core.companies import companies, company_create


class Command(DomainCommand):
    help = "list: the companies; create CODE --name N --currency CUR: add a company (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("list", "create"))
        parser.add_argument("code", metavar="CODE", nargs="?", help="company code (create)")
        parser.add_argument("--name", default="", help="company name (create)")
        parser.add_argument("--currency", default="", help="base currency, e.g. CNY (create)")
        parser.add_argument("--time-zone", default="", help="e.g. Asia/Shanghai (create)")
        parser.add_argument(
            "--fiscal-year-start", type=whole_number, default=1, metavar="MONTH", help="1-12"
        )
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            default=None,
            help="the user who acts (needs access.manage over every company); without it the "
            "server's operator acts, as with `closeout user`",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for c in companies():
                self.stdout.write(
                    f"{c.code}\t{c.name}\t{c.base_currency}\t{c.time_zone}\t"
                    f"{c.fiscal_year_start_month}"
                )
            return
        if not options["code"] or not options["name"] or not options["currency"]:
            raise CommandError("company create needs CODE, --name and --currency")
        company = company_create(
            actor=actor_for(options["as_user"]) if options["as_user"] else None,
            code=options["code"],
            name=options["name"],
            currency=options["currency"],
            time_zone=options["time_zone"],
            fiscal_year_start_month=options["fiscal_year_start"],
        )
        self.stdout.write(
            f"company {company.code} {company.name} created ({company.base_currency}); "
            "give users roles on it with `closeout grant`"
        )
