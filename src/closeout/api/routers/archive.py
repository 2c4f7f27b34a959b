"""Archive (归档): the evidence pack of a period, the verification of an uploaded pack, and
the latest archive runs. For holders of `audit.view` over the whole company: a pack holds the
audit log of a period, a contiguous segment of the chain with every unit's events."""

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_noop
from ninja import File, Router
from ninja.files import UploadedFile

from closeout.access.permissions import Perm
from closeout.access.services import require_company_wide
from closeout.api import present
from closeout.api.routers._common import ERRORS, ZIP, caller, download, uploaded_stream
from closeout.api.schemas import ArchiveRunOut, PackVerifyOut
from closeout.core.companies import company_get
from closeout.core.errors import InvalidInput
from closeout.reports.archive import archive_runs_recent
from closeout.reports.archive_pack import archive_pack_download, period_parse
from closeout.reports.archive_verify import archive_pack_verify

router = Router(tags=["archive"])

WHAT = "the archive"
MAX_RUNS = 100


@router.get(
    "/packs",
    response={200: None, **ERRORS},
    summary="Download the evidence pack (.zip) of a period: '2026-03' or '2026-03-01..2026-03-15'",
    openapi_extra=download(ZIP),
)
def pack_download(request: HttpRequest, period: str, company: str = "") -> Any:
    """With `company` (a company code), that company's documents and their audit events only
    (the other events of the chain segment reduced to their links): `audit.view` over that
    company for every type is enough."""
    actor = caller(request)
    if company:
        return archive_pack_download(
            actor=actor, period=period_parse(period), company=company_get(company)
        )
    require_company_wide(actor, Perm.AUDIT_VIEW, what=WHAT)
    return archive_pack_download(actor=actor, period=period_parse(period))


@router.post(
    "/verify",
    response={200: PackVerifyOut, **ERRORS},
    summary="Verify an uploaded evidence pack against its manifest and the live audit chain",
)
def pack_verify(request: HttpRequest, pack: File[UploadedFile]) -> Any:
    """Multipart field `pack`. A pack that was changed is still a 200 with `intact` false and
    the problems; a file that is not a zip is a 422."""
    require_company_wide(caller(request), Perm.AUDIT_VIEW, what=WHAT)
    return present.pack_verdict_out(archive_pack_verify(uploaded_stream(pack, "pack"), live=True))


@router.get("/runs", response={200: list[ArchiveRunOut], **ERRORS}, summary="Latest archive runs")
def archive_runs(request: HttpRequest, limit: int = 10) -> Any:
    require_company_wide(caller(request), Perm.AUDIT_VIEW, what=WHAT)
    if not 1 <= limit <= MAX_RUNS:
        raise InvalidInput(
            gettext_noop("limit must be 1 to %(max)s"),
            details={"field": "limit"},
            params={"max": MAX_RUNS},
        )
    return [present.archive_run_out(r) for r in archive_runs_recent(limit)]
