from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "closeout.reports"
    label = "reports"
    verbose_name = "报表与校验 reports and diagnostics"
