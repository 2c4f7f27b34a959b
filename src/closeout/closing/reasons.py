"""Reason codes (结案原因) per company: which codes a document's company may use (the group's,
each overridden by the company's own code of the same name), the one lookup every close and
reopen goes through (`reason_get`), and creating or changing a code (`reason_code_save`)."""

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide, require_unit_wide
from closeout.audit.changes import field_changes, field_values
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.closing.models import ReasonAction, ReasonCode
from closeout.core.errors import Bilingual, InvalidInput
from closeout.core.models import Company

REASON_CODE_MAX = 40
_FIELDS = ("action", "label_zh", "label_en", "active")


@dataclass
class ReasonTable:
    """Reason codes loaded once, to judge the codes of many documents (of any company)."""

    rows: list[ReasonCode]
    company_codes: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, company_id: int | None = None, *, every_company: bool = True) -> "ReasonTable":
        """Every code (or, `every_company` False, those of the group and of `company_id`)."""
        rows = ReasonCode.objects.order_by("action", "code")
        if not every_company:
            rows = rows.filter(Q(company__isnull=True) | Q(company_id=company_id))
        codes = dict(Company.objects.values_list("unit_id", "unit__code"))
        return cls(list(rows), codes)

    def company_id_of(self, code: str) -> int | None:
        return next((pk for pk, c in self.company_codes.items() if c == code), None)

    def in_force(self, company_id: int | None) -> dict[str, ReasonCode]:
        """code → the row in force for documents of the company: its own over the group's."""
        found = {r.code: r for r in self.rows if r.company_id is None}
        found |= {
            r.code: r for r in self.rows if r.company_id is not None and r.company_id == company_id
        }
        return found

    def valid(self, code: str, action: str, company_id: int | None) -> ReasonCode | None:
        reason = self.in_force(company_id).get(code)
        if reason is None or not reason.active or reason.action != action:
            return None
        return reason

    def allowed(self, action: str, company_id: int | None) -> list[str]:
        """The codes users may choose for `action` on documents of the company."""
        return sorted(
            r.code
            for r in self.in_force(company_id).values()
            if r.action == action and r.active and not r.system
        )

    def owners(self, code: str, action: str) -> list[str]:
        """The companies (by code) whose own active code `code` is."""
        return sorted(
            self.company_codes.get(r.company_id, "?")
            for r in self.rows
            if r.code == code and r.company_id is not None and r.active and r.action == action
        )


def reason_choices(action: str, company_id: int | None) -> list[ReasonCode]:
    """The reasons a user may choose for `action` on a document of the company (form lists)."""
    table = ReasonTable.load(company_id, every_company=False)
    in_force = table.in_force(company_id)
    return [in_force[code] for code in table.allowed(action, company_id)]


def reason_get(
    code: str, action: ReasonAction, *, company_id: int | None, any_company: bool = False
) -> ReasonCode:
    """The reason `code` for `action` on a document of the company; refused when unknown,
    inactive, of the other action or of another company. `any_company`: a code in force in
    at least one company (a batch over several companies, checked again per document)."""
    table = ReasonTable.load(company_id, every_company=any_company)
    reason = table.valid(code, action, company_id)
    if reason is None and any_company:
        reason = next(
            (r for r in table.rows if r.code == code and r.active and r.action == action), None
        )
    if reason is not None:
        return reason
    allowed = table.allowed(action, company_id)
    words = Bilingual(str(action), "结案" if action == "close" else "反结案")
    owners = ReasonTable.load().owners(code, action) if not any_company else []
    if owners:
        raise InvalidInput(
            gettext_noop(
                "reason '%(code)s' is a reason of company %(owner)s and cannot be used for a "
                "document of company %(company)s; use one of: %(allowed)s"
            ),
            params={
                "code": code,
                "owner": ", ".join(owners),
                "company": table.company_codes.get(company_id or 0, "-"),
                "allowed": ", ".join(allowed),
            },
            details={"field": "reason", "allowed": allowed, "rule": "reason_of_other_company"},
        )
    raise InvalidInput(
        gettext_noop("unknown %(action)s reason '%(code)s'; use one of: %(allowed)s"),
        params={"action": words, "code": code, "allowed": ", ".join(allowed)},
        details={"field": "reason", "allowed": allowed},
    )


def _reason_input_check(code: str, action: str, label_zh: str, label_en: str) -> None:
    if not code or not code.replace("_", "").isalnum() or not code.isascii():
        raise InvalidInput(
            gettext_noop("reason code '%(code)s' must be letters, digits and _"),
            params={"code": code},
            details={"field": "code"},
        )
    if len(code) > REASON_CODE_MAX:
        raise InvalidInput(
            gettext_noop("reason code '%(code)s' is longer than %(max)s characters"),
            params={"code": code[:60], "max": REASON_CODE_MAX},
            details={"field": "code"},
        )
    if action not in ReasonAction.values:
        raise InvalidInput(
            gettext_noop("unknown reason action '%(action)s'"),
            params={"action": action},
            details={"field": "action"},
        )
    for name, text in (("label_zh", label_zh), ("label_en", label_en)):
        if not text.strip():
            raise InvalidInput(
                gettext_noop("reason code '%(code)s': %(field)s is empty"),
                params={"code": code, "field": name},
                details={"field": name},
            )


def reason_code_save(
    *,
    actor: AbstractBaseUser,
    code: str,
    action: str,
    label_zh: str,
    label_en: str,
    active: bool = True,
    company: Company | None = None,
) -> ReasonCode:
    """Create a reason code (结案原因) of the group (`company` None: needs `policy.manage` over
    every company) or of one company (over that company), or change one; audited with before
    and after values. System codes are not changed by hand."""
    if company is None:
        require_company_wide(actor, Perm.POLICY_MANAGE, what="reason codes")
    else:
        require_unit_wide(actor, Perm.POLICY_MANAGE, company.unit, what="reason codes")
    code = code.strip()
    _reason_input_check(code, action, label_zh, label_en)
    with transaction.atomic():
        reason = ReasonCode.objects.select_for_update().filter(code=code, company=company).first()
        group = ReasonCode.objects.filter(code=code, company__isnull=True).first()
        if (reason is not None and reason.system) or (group is not None and group.system):
            raise InvalidInput(
                gettext_noop("reason code '%(code)s' is used by the system and cannot be changed"),
                params={"code": code},
                details={"field": "code"},
            )
        created = reason is None
        reason = reason or ReasonCode(code=code, company=company)
        before = None if created else field_values(reason, _FIELDS)
        reason.action, reason.active = action, active
        reason.label_zh, reason.label_en = label_zh.strip(), label_en.strip()
        reason.save()
        data = field_changes(before, field_values(reason, _FIELDS))
        if company is not None:
            data["company"] = company.code
        audit_record(
            actor=actor,
            action=AuditAction.REASON_CHANGED,
            object_type=AuditObject.REASON_CODE,
            object_id=reason.pk,
            object_repr=code if company is None else f"{company.code}/{code}",
            data=data,
        )
    return reason


def reason_scopes_managed(user: AbstractBaseUser) -> tuple[bool, list[Company]]:
    """Where `user` may manage reason codes: the group and the companies (policy.manage)."""
    from closeout.access.selectors import companies_managed

    return companies_managed(user, str(Perm.POLICY_MANAGE))


def reason_code_list(*, actor: AbstractBaseUser) -> list[ReasonCode]:
    """The codes `actor` may see on the configuration page: the group's and those of the
    companies they manage (never another company's)."""
    _, managed = reason_scopes_managed(actor)
    return list(
        ReasonCode.objects.filter(Q(company__isnull=True) | Q(company__in=managed))
        .select_related("company__unit")
        .order_by("action", "code", "company__unit__code")
    )
