"""App config of the HTTP API."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "closeout.api"
    label = "api"
    verbose_name = "接口 API"
    default_auto_field = "django.db.models.BigAutoField"
