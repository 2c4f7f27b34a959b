"""Permission codes (权限). Roles bundle them; grants give roles over organisation units."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Perm(models.TextChoices):
    DOCUMENT_VIEW = "document.view", _("view documents")
    DOCUMENT_SYNC = "document.sync", _("sync documents and events")
    CLOSE_REQUEST = "close.request", _("request close")
    CLOSE_DIRECT = "close.direct", _("close directly")
    CLOSE_APPROVE = "close.approve", _("approve close")
    REOPEN_REQUEST = "reopen.request", _("request reopen")
    REOPEN_APPROVE = "reopen.approve", _("approve reopen")
    HOLD = "document.hold", _("hold and release")
    BATCH_RUN = "batch.run", _("run batches")
    IMPORT_RUN = "import.run", _("import")
    POLICY_MANAGE = "policy.manage", _("manage policies")
    ACCESS_MANAGE = "access.manage", _("manage access")
    AUDIT_VIEW = "audit.view", _("view audit log")
    REPORT_VIEW = "report.view", _("view reports")
