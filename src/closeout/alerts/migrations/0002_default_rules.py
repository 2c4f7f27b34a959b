"""The standard alert rules, all active."""

from django.db import migrations

RULES = [
    ("complete_but_open", 3, "supervisor"),
    ("overdue", 7, "supervisor"),
    ("stale", 90, "supervisor"),
    ("approval_overdue", 0, "supervisor"),
    ("grant_expiring", 1, "admin"),
]


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    rule = apps.get_model("alerts", "AlertRule")
    for code, days, role in RULES:
        rule.objects.get_or_create(code=code, defaults={"days": days, "recipients_role": role})


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
