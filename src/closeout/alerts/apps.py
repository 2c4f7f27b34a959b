from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "closeout.alerts"
    label = "alerts"
    verbose_name = "预警 / Alerts"
