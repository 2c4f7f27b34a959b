from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data set and `closeout demo`: the top layer, it may use every app."""

    name = "closeout.demo"
    label = "demo"
    verbose_name = "演示数据 / Demo data"
