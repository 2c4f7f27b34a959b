from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "closeout.core"
    label = "core"
    verbose_name = "基础资料 / Master data"
