"""Every document belongs to the company of its organisation unit (its nearest company
ancestor): the field is added empty and filled here; 0008 makes it required."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def documents_to_companies(apps: Any, schema_editor: Any) -> None:
    Company = apps.get_model("core", "Company")
    Document = apps.get_model("documents", "Document")
    OrgUnit = apps.get_model("core", "OrgUnit")
    # Outer companies first, so a company inside another takes its own units' documents.
    for company in sorted(Company.objects.select_related("unit"), key=lambda c: len(c.unit.path)):
        units = OrgUnit.objects.filter(path__startswith=company.unit.path).values("pk")
        Document.objects.filter(org_unit__in=units).update(company=company)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_company"),
        ("documents", "0006_document_reopened_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="company",
            field=models.ForeignKey(
                null=True,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="core.company",
            ),
        ),
        migrations.RunPython(documents_to_companies, migrations.RunPython.noop),
    ]
