from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "closeout.alerts"
    label = "alerts"
    verbose_name = "预警 / Alerts"

    def ready(self) -> None:
        from closeout.alerts.models import AlertCode
        from closeout.core.labels import label_in
        from closeout.notifications.catalog import register_labels

        def alert_label(code: str, lang: str) -> str:
            return label_in(AlertCode(code).label, lang) if code in AlertCode.values else code

        register_labels("alert", alert_label)
