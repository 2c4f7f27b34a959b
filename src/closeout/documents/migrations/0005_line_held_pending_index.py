from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0004_number_prefix_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="line",
            index=models.Index(
                condition=models.Q(("close_state__in", ["on_hold", "close_pending"])),
                fields=["document"],
                name="line_held_pending_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="businessevent",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "quarantined"])),
                fields=["document"],
                name="event_unsettled_idx",
            ),
        ),
    ]
