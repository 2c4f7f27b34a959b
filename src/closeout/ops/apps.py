from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: health and readiness probes, metrics, backup and restore."""

    name = "closeout.ops"
    label = "ops"
    verbose_name = "运维 / Operations"
