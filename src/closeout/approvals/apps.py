from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "closeout.approvals"
    label = "approvals"
    verbose_name = "审批 / Approvals"

    def ready(self) -> None:
        from closeout.approvals.selectors import period_is_closed, route_for_close
        from closeout.closing.hooks import ApprovalAnswers, register

        register(
            ApprovalAnswers(period_is_closed=period_is_closed, route_for_close=route_for_close)
        )
