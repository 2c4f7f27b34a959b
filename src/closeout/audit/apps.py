from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "closeout.audit"
    label = "audit"
    verbose_name = "操作日志 / Audit log"
