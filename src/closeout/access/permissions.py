"""Permission codes (权限). Roles bundle them; grants give roles over organisation units."""

from django.db import models


class Perm(models.TextChoices):
    DOCUMENT_VIEW = "document.view", "查看单据 view documents"
    DOCUMENT_SYNC = "document.sync", "同步单据与业务 sync documents and events"
    CLOSE_REQUEST = "close.request", "申请结案 request close"
    CLOSE_DIRECT = "close.direct", "直接结案 close directly"
    CLOSE_APPROVE = "close.approve", "审批结案 approve close"
    REOPEN_REQUEST = "reopen.request", "申请反结案 request reopen"
    REOPEN_APPROVE = "reopen.approve", "审批反结案 approve reopen"
    HOLD = "document.hold", "冻结/解冻 hold and release"
    BATCH_RUN = "batch.run", "批量处理 run batches"
    IMPORT_RUN = "import.run", "导入 import"
    POLICY_MANAGE = "policy.manage", "结案策略 manage policies"
    ACCESS_MANAGE = "access.manage", "权限管理 manage access"
    AUDIT_VIEW = "audit.view", "查看日志 view audit log"
    REPORT_VIEW = "report.view", "查看报表 view reports"
