"""App config of the web workbench."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "closeout.web"
    label = "web"
    verbose_name = "结案工作台 workbench"
