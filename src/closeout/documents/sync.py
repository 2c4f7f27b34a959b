"""ERP synchronisation of partners and documents (`closeout sync`, the sync API): the
refusals it names and the upsert of one document as the ERP describes it."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.core.companies import company_of
from closeout.core.errors import (
    Conflict,
    InvalidInput,
)
from closeout.core.inputs import check_length, max_length_of
from closeout.core.lookup import org_unit_by_code
from closeout.core.models import Partner, PartnerKind
from closeout.core.services import item_get_or_create
from closeout.documents.document_values import LineInput
from closeout.documents.models import (
    Document,
)
from closeout.documents.types import spec_for
from closeout.documents.upsert import document_upsert


def partner_sync(
    *, actor: AbstractBaseUser, code: str, name: str, kind: str, active: bool = True
) -> tuple[Partner, bool]:
    """Create or update a supplier/customer from the ERP (by code); a creation or a change is
    audited with the values before and after, an identical resend changes nothing."""
    require(actor, Perm.DOCUMENT_SYNC, what=f"partner {code}")
    if kind not in PartnerKind.values:
        raise InvalidInput(
            gettext_noop("unknown partner kind '%(kind)s'; use one of: %(values)s"),
            details={"field": "kind"},
            params={"kind": kind, "values": ", ".join(PartnerKind.values)},
        )
    if not code.strip() or not name.strip():
        raise InvalidInput(
            gettext_noop("partner code and name must not be empty"),
            details={"field": "name"},
            params={},
        )
    for field, value in (("code", code), ("name", name)):
        check_length(value, field=field, max_length=max_length_of(Partner, field))
    with transaction.atomic():
        partner, created = Partner.objects.select_for_update(no_key=True).get_or_create(
            code=code, defaults={"name": name, "kind": kind, "active": active}
        )
        before = {"name": partner.name, "kind": partner.kind, "active": partner.active}
        after = {"name": name, "kind": kind, "active": active}
        if created:
            audit_record(
                actor=actor,
                action=AuditAction.PARTNER_CREATED,
                object_type=AuditObject.PARTNER,
                object_id=partner.pk,
                object_repr=f"partner {code}",
                data=after,
            )
        elif before != after:
            partner.name, partner.kind, partner.active = name, kind, active
            partner.save(update_fields=["name", "kind", "active"])
            audit_record(
                actor=actor,
                action=AuditAction.PARTNER_UPDATED,
                object_type=AuditObject.PARTNER,
                object_id=partner.pk,
                object_repr=f"partner {code}",
                data={
                    field: {"before": before[field], "after": after[field]}
                    for field in after
                    if before[field] != after[field]
                },
            )
    return partner, created


@dataclass(frozen=True)
class LineData:
    line_no: int
    planned_qty: Decimal
    unit_price: Decimal
    item: str = ""
    item_name: str = ""
    description: str = ""
    unit: str = "EA"
    planned_amount: Decimal | None = None


def unknown_partner(code: str) -> InvalidInput:
    return InvalidInput(
        gettext_noop("unknown partner '%(code)s': push it first (PUT /api/partners/%(code)s)"),
        params={"code": code},
        details={"field": "partner"},
    )


def external_id_taken(actor: AbstractBaseUser, clash: Document) -> Conflict:
    """The refusal of a document whose source system and external id `clash` already holds;
    the other document is named only to a caller who may see it."""
    shown = (
        clash.label
        if user_has_perm(
            actor, Perm.DOCUMENT_VIEW, org_unit=clash.org_unit, doc_type=clash.doc_type
        )
        else "another document"
    )
    return Conflict(
        gettext_noop(
            "external id '%(external_id)s' from %(source_system)s already belongs to %(shown)s"
        ),
        details={"field": "external_id", "document": shown},
        params={
            "external_id": clash.external_id,
            "source_system": clash.source_system,
            "shown": shown,
        },
    )


def document_sync(
    *,
    actor: AbstractBaseUser,
    doc_type: str,
    number: str,
    org_unit: str,
    document_date: date,
    lines: list[LineData],
    partner: str = "",
    expected_date: date | None = None,
    currency: str = "CNY",
    exchange_rate: Decimal | None = None,
    source_system: str = "closeout",
    external_id: str = "",
    if_match: int | None = None,
) -> tuple[Document, bool]:
    """Upsert a document pushed by an ERP, by codes: resolves the organisation unit, partner
    and items, then calls `document_upsert` (which checks permission and the lock). Returns
    (document, created)."""
    spec_for(doc_type)
    unit = org_unit_by_code(org_unit)
    require(actor, Perm.DOCUMENT_SYNC, org_unit=unit, doc_type=doc_type, what=number)
    partner_obj: Partner | None = None
    if partner:
        partner_obj = Partner.objects.filter(code=partner).first()
        if partner_obj is None:
            raise unknown_partner(partner)
    company = company_of(unit)
    existing = Document.objects.filter(company=company, doc_type=doc_type, number=number).exists()
    if external_id:
        clash = (
            Document.objects.filter(source_system=source_system, external_id=external_id)
            .exclude(company=company, doc_type=doc_type, number=number)
            .first()
        )
        if clash is not None:
            raise external_id_taken(actor, clash)
    inputs = [
        LineInput(
            line_no=line.line_no,
            planned_qty=line.planned_qty,
            unit_price=line.unit_price,
            item=item_get_or_create(
                code=line.item, name=line.item_name or line.item, unit=line.unit
            )
            if line.item
            else None,
            description=line.description,
            unit=line.unit,
            planned_amount=line.planned_amount,
        )
        for line in lines
    ]
    try:
        document = document_upsert(
            actor=actor,
            doc_type=doc_type,
            number=number,
            org_unit=unit,
            document_date=document_date,
            lines=inputs,
            partner=partner_obj,
            expected_date=expected_date,
            currency=currency,
            exchange_rate=exchange_rate,
            source_system=source_system,
            external_id=external_id,
            expected_version=if_match,
        )
    except IntegrityError as exc:
        # Another request created the same document at the same moment.
        raise Conflict(
            gettext_noop(
                "%(doc_type)s %(number)s was written by another request at the same time; retry"
            ),
            details={"number": number},
            params={"doc_type": doc_type, "number": number},
        ) from exc
    return document, not existing


__all__ = [
    "LineData",
    "document_sync",
    "external_id_taken",
    "partner_sync",
    "unknown_partner",
]
