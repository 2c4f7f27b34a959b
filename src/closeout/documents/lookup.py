"""Finding and locking documents: by type and number (per company), many at once, only
when the viewer may see them (else NotFound, as for a missing one), and the words a locked one
is named with."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.core.doctypes import doc_type_known, doc_type_label_lazy
from closeout.core.errors import (
    Bilingual,
    CompanyAmbiguous,
    NotFound,
    bilingual_label,
)
from closeout.documents.models import (
    CloseState,
    Document,
)
from closeout.documents.types import spec_for


def document_get(doc_type: str, number: str, company: str = "") -> Document:
    """The document of `doc_type` numbered `number`; numbers are unique per company, so with
    no `company` code a number held by several companies is refused as ambiguous."""
    return _document_pick(_documents_numbered(doc_type, number, company), doc_type, number)


def _documents_numbered(doc_type: str, number: str, company: str) -> list[Document]:
    spec_for(doc_type)  # a clear error for an unknown type
    qs = Document.objects.select_related("org_unit", "partner", "company__unit").filter(
        doc_type=doc_type, number=number
    )
    if company:
        qs = qs.filter(company__unit__code=company)
    return list(qs.order_by("company_id")[:50])


def _document_pick(found: list[Document], doc_type: str, number: str) -> Document:
    if not found:
        raise document_missing(doc_type, number)
    if len(found) > 1:
        codes = [d.company.code for d in found]
        raise CompanyAmbiguous(
            gettext_noop(
                "%(doc_type)s %(number)s exists in several companies (%(companies)s): "
                "name the company (company=CODE)"
            ),
            params={
                "doc_type": type_words(doc_type),
                "number": number,
                "companies": ", ".join(codes),
            },
            details={"doc_type": doc_type, "number": number, "companies": codes},
        )
    return found[0]


def documents_numbered_many(
    keys: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], list[Document]]:
    """Every document of each (doc_type, number) pair, in all companies, in one query per type
    and chunk; the caller picks the company (`document_pick_from`). A missing pair is absent."""
    wanted = set(keys)
    found: dict[tuple[str, str], list[Document]] = {}
    for doc_type in {t for t, _ in wanted}:
        numbers = sorted(n for t, n in wanted if t == doc_type)
        for start in range(0, len(numbers), IN_CHUNK):
            for document in (
                Document.objects.select_related("org_unit", "partner", "company__unit")
                .filter(doc_type=doc_type, number__in=numbers[start : start + IN_CHUNK])
                .order_by("company_id")
            ):
                found.setdefault((document.doc_type, document.number), []).append(document)
    return found


def document_pick_from(
    candidates: list[Document], doc_type: str, number: str, company: str = ""
) -> Document:
    """As `document_get` among documents already read: the one of `company`, or the only one;
    missing or ambiguous otherwise. Give only the candidates the caller may see, so that an
    ambiguity never names a company the caller may not see."""
    if company:
        candidates = [d for d in candidates if d.company.code == company]
    return _document_pick(candidates, doc_type, number)


def documents_lock_many(document_ids: Iterable[int]) -> dict[int, Document]:
    """`document_lock` for many documents: locked in id order (the lock order of every writer,
    so two writers never wait on each other in a circle), re-read under the lock."""
    ids = sorted(set(document_ids))
    return {
        document.pk: document
        for document in Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit", "company__unit")
        .filter(pk__in=ids)
        .order_by("pk")
    }


# Values per `IN (...)` list: below SQLite's limit of bound parameters.
IN_CHUNK = 900


def document_missing(doc_type: str, number: str) -> NotFound:
    """The answer for a number that does not exist, and word for word the answer for one the
    caller may not see: nobody learns that another unit's document exists."""
    return NotFound(
        gettext_noop("no %(doc_type)s numbered '%(number)s'"),
        params={"doc_type": type_words(doc_type), "number": number},
        details={"doc_type": doc_type, "number": number},
    )


def type_words(doc_type: str) -> Bilingual:
    """A document type in a message: its code in English (as the API always said), its name
    in Chinese."""
    if not doc_type_known(doc_type):
        return Bilingual(doc_type, doc_type)
    return Bilingual(doc_type, bilingual_label(doc_type_label_lazy(doc_type)).zh)


def document_require_visible(
    actor: AbstractBaseUser, document: Document, perm: str = Perm.DOCUMENT_VIEW
) -> None:
    """NotFound, exactly as for a missing number, unless `actor` holds `perm` (by default:
    may view documents) over the document's unit and type."""
    if not user_has_perm(actor, perm, org_unit=document.org_unit, doc_type=document.doc_type):
        raise document_missing(document.doc_type, document.number)


def document_get_visible(
    actor: AbstractBaseUser,
    doc_type: str,
    number: str,
    perm: str = Perm.DOCUMENT_VIEW,
    company: str = "",
) -> Document:
    """`document_get` for a caller: a document outside the caller's scope does not exist, and
    only the companies whose document the caller may see make a number ambiguous."""
    found = [
        document
        for document in _documents_numbered(doc_type, number, company)
        if user_has_perm(actor, perm, org_unit=document.org_unit, doc_type=document.doc_type)
    ]
    return _document_pick(found, doc_type, number)


def document_lock(document_id: int) -> Document:
    """Re-read the document under a row lock: every state check works on this fresh copy.
    Only the document row is locked (`FOR UPDATE OF`), never its organisation unit, so writes
    to different documents of one unit do not wait on each other."""
    return (
        Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit")
        .get(pk=document_id)
    )


def locked_message(document: Document) -> str:
    if document.close_state == CloseState.ARCHIVED:
        return (
            f"{document.label} is archived (最终结案, final): it is read-only for ever and "
            "can never be changed or reopened"
        )
    return (
        f"{document.label} is {document.close_state}: it is locked against changes and "
        "must be reopened (反结案) first"
    )


__all__ = [
    "IN_CHUNK",
    "document_get",
    "document_get_visible",
    "document_lock",
    "document_missing",
    "document_pick_from",
    "document_require_visible",
    "documents_lock_many",
    "documents_numbered_many",
    "locked_message",
    "type_words",
]
