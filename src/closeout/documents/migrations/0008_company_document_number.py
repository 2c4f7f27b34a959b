"""Document numbers are unique per company and type (were: per type)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0007_company_document"),
    ]

    operations = [
        migrations.AlterField(
            model_name="document",
            name="company",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="core.company",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="document",
            name="document_type_number_uniq",
        ),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.UniqueConstraint(
                fields=("company", "doc_type", "number"), name="document_company_number_uniq"
            ),
        ),
    ]
