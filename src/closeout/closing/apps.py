from django.apps import AppConfig


class ClosingConfig(AppConfig):
    name = "closeout.closing"
    label = "closing"
    verbose_name = "结案 / Closing"
