from django.contrib import admin

from closeout.alerts.models import AlertRule, AlertRun
from closeout.core.admin import ReadOnlyAdmin


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin):
    list_display = ("code", "active", "days", "recipients_role")


@admin.register(AlertRun)
class AlertRunAdmin(ReadOnlyAdmin):
    list_display = ("rule", "ran_at", "count")
