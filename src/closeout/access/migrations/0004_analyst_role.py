"""A standard role that reads reports and nothing else: a controller or analyst who follows the
closing KPIs and consistency checks of their unit (查询分析 analyst)."""

from django.db import migrations


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    role = apps.get_model("access", "Role")
    role.objects.get_or_create(
        code="analyst",
        defaults={
            "name_zh": "分析员",
            "name_en": "Analyst",
            "permissions": ["document.view", "report.view"],
        },
    )


def unseed(apps, schema_editor):  # type: ignore[no-untyped-def]
    role = apps.get_model("access", "Role")
    role.objects.filter(code="analyst", grants__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("access", "0003_permission_conflicts_and_grant_expiry_notices")]
    operations = [migrations.RunPython(seed, unseed)]
