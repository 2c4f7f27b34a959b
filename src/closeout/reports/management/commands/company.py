"""`closeout company list`: one company a line, its code first, then name, base currency, time
zone and fiscal year start month (tab-separated). `closeout company create CODE --name N
--currency CUR [--time-zone TZ] [--fiscal-year-start M] [--as USER]`: a new company (a new root
organisation unit), audited; with `--as` the user needs access.manage over every company.
`closeout company rate TABLE --currency USD --to CNY --day D --rate R`: one rate of a rate table
(audited). `closeout company report --currency CNY --rates TABLE [--as-of D] --as USER`: the
group view, per company the user may see in reports, converted at that table's rates."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext_noop

from closeout.access.companies import company_create
from closeout.core.cli import DomainCommand, actor_for, parse_date, whole_number
from closeout.core.companies import companies
from closeout.core.errors import InvalidInput
from closeout.reports.group import GroupReport, exchange_rate_set, group_report


class Command(DomainCommand):
    help = "list: the companies; create CODE --name N --currency CUR: add a company (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("list", "create", "rate", "report"))
        parser.add_argument(
            "code", metavar="CODE", nargs="?", help="company code (create), rate table (rate)"
        )
        parser.add_argument("--name", default="", help="company name (create)")
        parser.add_argument(
            "--currency",
            default="",
            help="base currency (create), from currency (rate), group currency (report)",
        )
        parser.add_argument("--to", default="", help="to currency (rate)")
        parser.add_argument("--day", default=None, help="YYYY-MM-DD the rate applies from (rate)")
        parser.add_argument("--rate", default="", help="1 currency = RATE to currency (rate)")
        parser.add_argument("--rates", default="", metavar="TABLE", help="rate table (report)")
        parser.add_argument("--as-of", default=None, help="YYYY-MM-DD of the rates (report)")
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
        if options["action"] == "rate":
            self._rate(options)
            return
        if options["action"] == "report":
            if not options["as_user"] or not options["currency"] or not options["rates"]:
                raise CommandError("company report needs --currency, --rates and --as")
            self._print(
                group_report(
                    actor=actor_for(options["as_user"]),
                    currency=options["currency"],
                    table=options["rates"],
                    as_of=parse_date(options["as_of"], "--as-of"),
                )
            )
            return
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

    def _rate(self, options: dict[str, Any]) -> None:
        day = parse_date(options["day"], "--day")
        if not options["code"] or day is None or not options["rate"]:
            raise CommandError("company rate needs TABLE, --currency, --to, --day and --rate")
        try:
            rate = Decimal(options["rate"])
        except InvalidOperation as exc:
            raise InvalidInput(
                gettext_noop("--rate: '%(rate)s' is not a number"), params={"rate": options["rate"]}
            ) from exc
        saved = exchange_rate_set(
            actor=actor_for(options["as_user"]) if options["as_user"] else None,
            table=options["code"],
            currency=options["currency"],
            to_currency=options["to"],
            day=day,
            rate=rate,
        )
        self.stdout.write(f"rate set: {saved}")

    def _print(self, report: GroupReport) -> None:
        self.stdout.write(
            f"group view in {report.currency}, rate table {report.table} on {report.as_of}"
        )
        for c in report.companies:
            if c.rate is None:
                self.stdout.write(
                    f"{c.code}\t{c.name}\t{c.documents} documents ({c.open_documents} open)\t"
                    f"total {c.total:,} {c.base_currency}\treleased {c.released:,} "
                    f"{c.base_currency}\tno rate to {report.currency}: not in the group total"
                )
                continue
            self.stdout.write(
                f"{c.code}\t{c.name}\t{c.documents} documents ({c.open_documents} open)\t"
                f"total {c.total:,} {c.base_currency} = {c.group_total:,} {report.currency}\t"
                f"released {c.released:,} {c.base_currency} = {c.group_released:,} "
                f"{report.currency}\trate {c.rate}"
            )
        self.stdout.write(
            f"group total {report.total:,} {report.currency}; released "
            f"{report.released:,} {report.currency}"
        )
        used = "; ".join(report.rates_used) or "none (every company keeps its books in it)"
        self.stdout.write(f"rates used: {used}")
        if report.rates_missing:
            self.stdout.write(
                f"rates missing in {report.table} on or before {report.as_of}: "
                + "; ".join(report.rates_missing)
            )
