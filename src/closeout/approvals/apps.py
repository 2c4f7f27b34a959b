from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "closeout.approvals"
    label = "approvals"
    verbose_name = "审批 / Approvals"
