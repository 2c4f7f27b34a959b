"""App config of the web workbench."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    name = "closeout.web"
    label = "web"
    verbose_name = _("workbench")

    def ready(self) -> None:
        from django.contrib import admin

        from closeout.web.forms import ThrottledAdminLoginForm

        # One sign-in throttle for every login form: the admin's shares the workbench's.
        admin.site.login_form = ThrottledAdminLoginForm
