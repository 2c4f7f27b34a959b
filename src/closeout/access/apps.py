from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "closeout.access"
    label = "access"
    verbose_name = "权限 / Access"
