"""Companies: every root organisation unit of an existing installation becomes a company with
the installation's currency and time zone (one root: one company holding today's data). Paths,
grants and numbers stay as they are, so nothing behaves differently."""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def roots_become_companies(apps: Any, schema_editor: Any) -> None:
    OrgUnit = apps.get_model("core", "OrgUnit")
    Company = apps.get_model("core", "Company")
    for root in OrgUnit.objects.filter(parent__isnull=True):
        Company.objects.get_or_create(
            unit=root,
            defaults={
                "base_currency": settings.CLOSEOUT_COMPANY_CURRENCY,
                "time_zone": settings.TIME_ZONE,
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_counter"),
    ]

    operations = [
        migrations.CreateModel(
            name="Company",
            fields=[
                (
                    "unit",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        primary_key=True,
                        related_name="company_profile",
                        serialize=False,
                        to="core.orgunit",
                    ),
                ),
                (
                    "base_currency",
                    models.CharField(default="CNY", max_length=3, verbose_name="本位币 base currency"),
                ),
                (
                    "time_zone",
                    models.CharField(
                        default="Asia/Shanghai", max_length=60, verbose_name="时区 time zone"
                    ),
                ),
                (
                    "fiscal_year_start_month",
                    models.PositiveSmallIntegerField(
                        default=1, verbose_name="会计年度起始月 fiscal year start"
                    ),
                ),
            ],
            options={
                "verbose_name": "公司 company",
                "verbose_name_plural": "公司 companies",
                "ordering": ["unit__code"],
            },
        ),
        migrations.RunPython(roots_become_companies, migrations.RunPython.noop),
    ]
