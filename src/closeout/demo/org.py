"""The demo organisation (companies, departments, purchasing groups) and its users."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import models

from closeout.access.accounts import password_check
from closeout.access.companies import company_create
from closeout.access.models import Role
from closeout.access.services import grant_create
from closeout.core.services import org_unit_create
from closeout.demo.base import (
    DEMO_COMPANY,
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    DEPARTMENTS,
    PO_DEPT,
    PO_EAST,
    SO_DEPT,
    SUB_UNITS,
    US_COMPANY,
    US_PURCHASING,
    BuilderBase,
    DemoLogin,
)
from closeout.documents.models import (
    DocType,
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    role: str
    org_unit: str
    doc_types: tuple[str, ...] = ()
    superuser: bool = False

    @property
    def scope(self) -> str:
        types = f" for {', '.join(self.doc_types)}" if self.doc_types else ""
        return f"{self.role} over {self.org_unit}{types}"


DEMO_USERS = (
    DemoUser("admin", "管理员 Administrator", "admin", DEMO_COMPANY, superuser=True),
    DemoUser("buyer_us", "美国采购 Buyer (US)", "operator", US_COMPANY, (DocType.PURCHASE_ORDER,)),
    DemoUser(
        "buyer",
        "采购员 Buyer",
        "operator",
        PO_DEPT,
        (DocType.PURCHASE_ORDER, DocType.PAYABLE),
    ),
    DemoUser(
        "seller",
        "销售员 Seller",
        "operator",
        SO_DEPT,
        (DocType.SALES_ORDER, DocType.RECEIVABLE),
    ),
    DemoUser(
        "keeper",
        "仓管员 Stock keeper",
        "operator",
        DEMO_COMPANY,
        (DocType.STOCK_COUNT, DocType.PROJECT_STAGE),
    ),
    DemoUser("supervisor", "主管 Supervisor", "supervisor", DEMO_COMPANY),
    DemoUser("finance", "财务 Finance", "finance", DEMO_COMPANY),
    DemoUser("auditor", "审计 Auditor", "auditor", DEMO_COMPANY),
    DemoUser("erp", "ERP 接口 ERP integration", "integration", DEMO_COMPANY),
    # Users of one purchasing group only.
    DemoUser(
        "buyer_east",
        "采购一部采购员 Buyer (East)",
        "operator",
        PO_EAST,
        (DocType.PURCHASE_ORDER, DocType.PAYABLE),
    ),
    DemoUser("auditor_east", "采购一部审计 Auditor (East)", "auditor", PO_EAST),
    DemoUser("analyst_east", "采购一部分析员 Analyst (East)", "analyst", PO_EAST),
)
DEMO_USERNAMES = tuple(u.username for u in DEMO_USERS)


class OrgBuilder(BuilderBase):
    """The organisation units and the demo users with their grants."""

    def organisation(self) -> None:
        company = org_unit_create(code=DEMO_COMPANY, name="演示公司 Adventure Works Cycles (demo)")
        self.units[DEMO_COMPANY] = company
        for code, name in DEPARTMENTS:
            self.units[code] = org_unit_create(code=code, name=name, parent=company)
        for code, name, parent in SUB_UNITS:
            self.units[code] = org_unit_create(code=code, name=name, parent=self.units[parent])
        us = company_create(
            actor=None,
            code=US_COMPANY,
            name="Adventure Works Cycles, Inc. (US)",
            currency="USD",
            time_zone="America/Los_Angeles",
            fiscal_year_start_month=7,
        )
        self.units[US_COMPANY] = us.unit
        self.units[US_PURCHASING] = org_unit_create(
            code=US_PURCHASING, name="Purchasing (US)", parent=us.unit
        )

    def people(self) -> None:
        user_model = get_user_model()
        roles = {role.code: role for role in Role.objects.all()}
        # One hash for all: the password is the same and public, and hashing is slow on purpose.
        hashed = make_password(DEMO_PASSWORD)
        for spec in DEMO_USERS:
            user = user_model.objects.filter(username=spec.username).first()
            password: str | None = None
            if user is None:
                user = user_model.objects.create_user(
                    username=spec.username,
                    email=f"{spec.username}@{DEMO_EMAIL_DOMAIN}",
                    first_name=spec.name[:150],
                    is_staff=spec.superuser,
                    is_superuser=spec.superuser,
                )
                password_check(DEMO_PASSWORD, user)
                user.password = hashed
                user.save(update_fields=["password"])
                password = DEMO_PASSWORD
            elif user.email.lower().endswith(f"@{DEMO_EMAIL_DOMAIN}"):
                password = DEMO_PASSWORD
            self.users[spec.username] = user
            grant_create(
                actor=None,
                user=user,
                role=roles[spec.role],
                org_unit=self.units[spec.org_unit],
                doc_types=list(spec.doc_types),
                reason="closeout demo",
            )
            self.logins.append(DemoLogin(spec.username, spec.name, spec.scope, password))


def demo_users_qs() -> "models.QuerySet[Any]":
    """The users the demo created (recognised by their reserved e-mail domain)."""
    return get_user_model().objects.filter(email__iendswith=f"@{DEMO_EMAIL_DOMAIN}")
