"""App config of the web workbench."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "closeout.web"
    label = "web"
    verbose_name = "结案工作台 workbench"

    def ready(self) -> None:
        from django.contrib import admin

        from closeout.web.forms import ThrottledAdminLoginForm

        # One sign-in throttle for every login form: the admin's shares the workbench's.
        admin.site.login_form = ThrottledAdminLoginForm
