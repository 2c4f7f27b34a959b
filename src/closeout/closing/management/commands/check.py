"""`closeout check TYPE NUMBER`: the pre-close checklist (结案前核对, S5) of one document."""

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.management.base import CommandParser
from django.utils.translation import gettext_noop

from closeout.closing.risk import RiskWarning
from closeout.closing.selectors import close_checklist_for, close_checklist_with_risks
from closeout.core.cli import (
    DomainCommand,
    actor_for,
    fmt_lines,
    fmt_measures,
    parse_lines,
    table,
)
from closeout.core.errors import InvalidInput
from closeout.documents.models import CloseState
from closeout.documents.services import document_get
from closeout.documents.types import spec_for

VERDICTS = {
    "ready": ("可以结案：所有条件通过", "every rule passes; the document can close"),
    "warning": ("可以结案：仅有提示", "only warnings fail; the document can close"),
    "exception": (
        "例外：需手工结案，填写原因和备注",
        "exception rules fail; close by hand with a reason code and a remark",
    ),
    "blocked": ("阻断：修正阻断条件前不能结案", "blocking rules fail; it cannot close until fixed"),
}


def risk_lines(risks: list[RiskWarning], lang: str) -> list[str]:
    """The risk warnings (风险预警) under the checklist: flagged ones with their numbers, then
    what was checked. Advisory: they never change the verdict."""
    if not risks:
        return []
    out = ["", "risk warnings (advisory, not part of the verdict):"]
    flagged = [r for r in risks if r.flagged]
    if not flagged:
        out.append("  none: nothing unusual found")
    for r in flagged:
        where = f" (lines {fmt_lines(r.lines)})" if r.lines else ""
        out += [
            f"  RISK {r.code}{where}: {r.label(lang)}",
            f"    measured: {fmt_measures(r.measured)}",
            f"    reference: {fmt_measures(r.reference)}",
            f"    threshold: {r.threshold}",
            f"    next: {r.hint(lang)}",
        ]
    out += [f"  {r.status} {r.code}: {r.label(lang)}" for r in risks if not r.flagged]
    return out


class Command(DomainCommand):
    help = (
        "Print the pre-close checklist of a document: every rule, measured values, pass/fail. "
        "Without arguments: Django's system checks (the command this one replaces)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("doc_type", metavar="TYPE", nargs="?", help="e.g. purchase_order")
        parser.add_argument("number", metavar="NUMBER", nargs="?", help="document number")
        parser.add_argument(
            "--company", metavar="CODE", default="", help="company code (numbers clash)"
        )
        self.add_lines_argument(parser, "check only these lines (default: the whole document)")
        parser.add_argument(
            "--auto",
            action="store_true",
            help="check as the automatic close would (includes auto-only rules such as grace days)",
        )
        parser.add_argument(
            "--reason",
            default="",
            metavar="CODE",
            help="the close reason intended: adds the risk warnings a reason can contradict",
        )
        parser.add_argument(
            "--as",
            dest="as_user",
            default=None,
            metavar="USERNAME",
            help="the user who would close: adds the warning on their closes today",
        )
        parser.add_argument(
            "--deploy",
            action="store_true",
            help="without TYPE: Django's system checks with the deployment checks",
        )
        parser.add_argument(
            "--fail-level",
            choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"),
            default="ERROR",
            help="without TYPE: the system check level that fails the command (default ERROR)",
        )
        parser.add_argument(
            "--lang",
            choices=("zh", "en"),
            default=None,
            help="language of labels and hints (default: from LANGUAGE_CODE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """`closeout check`: without a document type, Django's system checks; with a type and
        number, the pre-close checklist of that document (optionally of some lines, or as the
        sweep sees it with --auto), with each failing line's own values under the totals, in the
        chosen language. Long because it prints every part of the checklist; the checks
        themselves are `closing.selectors`."""
        lang = options["lang"] or ("en" if settings.LANGUAGE_CODE.startswith("en") else "zh")
        if options["doc_type"] is None:
            self.check(
                display_num_errors=True,
                include_deployment_checks=options["deploy"],
                fail_level=getattr(checks, options["fail_level"]),
            )
            return
        if options["number"] is None:
            raise InvalidInput(
                gettext_noop("NUMBER is missing: closeout check TYPE NUMBER"), params={}
            )
        document = document_get(options["doc_type"], options["number"], company=options["company"])
        line_nos = parse_lines(options["lines"])
        if line_nos is not None:
            known = set(document.lines.values_list("line_no", flat=True))
            missing = [n for n in line_nos if n not in known]
            if missing:
                raise InvalidInput(
                    gettext_noop("%(document)s has no line %(missing)s"),
                    details={"field": "lines", "line_nos": missing},
                    params={
                        "document": document.in_words,
                        "missing": fmt_lines(missing),
                    },
                )
        if options["auto"]:
            checklist = close_checklist_for(document, line_nos=line_nos, for_auto=True)
        else:
            actor = actor_for(options["as_user"]) if options["as_user"] else None
            checklist = close_checklist_with_risks(
                document, actor=actor, reason_code=options["reason"], line_nos=line_nos
            )
        spec = spec_for(document.doc_type)
        scope = f"lines {fmt_lines(line_nos)}" if line_nos else "whole document"
        mode = "automatic close" if options["auto"] else "manual close"
        out = [
            f"{document.label} ({spec.label(lang)}) · {document.close_state} · "
            f"policy {checklist.policy} · {scope} · checked for {mode}",
            "",
        ]
        rows: list[tuple[str, ...]] = []
        for check in checklist.checks:
            rows.append(
                (
                    check.rule.code,
                    str(check.severity),
                    "PASS" if check.passed else "FAIL",
                    check.rule.label(lang),
                    fmt_measures(check.measured),
                    check.threshold,
                    fmt_lines(check.failing_lines) if check.failing_lines else "",
                )
            )
            # The failing lines' own values under the totals, so the cause is visible.
            for line_no in check.failing_lines:
                values = check.line_values.get(line_no, {})
                if values:
                    rows.append(("", "", "", f"  line {line_no}", fmt_measures(values), "", ""))
        if document.close_state != CloseState.OPEN:
            out += [
                f"note: the document is {document.close_state}; only its lines not yet closed "
                "are checked",
                "",
            ]
        headers = ("rule", "severity", "result", "label", "measured", "threshold", "failing lines")
        out.extend(table(headers, rows))
        failed = [check for check in checklist.checks if not check.passed]
        if failed:
            out += ["", "what to do next:"]
            out.extend(f"  {check.rule.code}: {check.rule.hint(lang)}" for check in failed)
        out += risk_lines(checklist.risks, lang)
        zh, en = VERDICTS[checklist.verdict]
        out += ["", f"verdict: {checklist.verdict} — {zh if lang == 'zh' else en}"]
        self.stdout.write("\n".join(out))
