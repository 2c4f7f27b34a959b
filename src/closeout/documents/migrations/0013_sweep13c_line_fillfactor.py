from django.db import migrations


# A line close writes no indexed column (0010), so its new row version is heap-only (HOT) when
# the page has room for it. A line is ~150 bytes and ~180 once closed (close stamp and released
# values); at fillfactor 70 a page keeps ~2,700 bytes for the new versions of ~36 rows, too few
# when a sweep closes half of them (67 % of the line updates were HOT, the others wrote a new
# entry in each line index). At 50 a page holds ~27 rows and room for the new versions of about
# 22: 99 % HOT measured (bench/sweep.py, 50,000 POs × 5 lines, half ready). The table is ~40 %
# larger; the what-if scan's server CPU and the queue and document pages' plans did not change.
# PostgreSQL only; existing pages keep their fill until the table is rewritten (VACUUM FULL or
# pg_repack), new ones get it at once.
def _fillfactor(percent):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE documents_line SET (fillfactor = {percent})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0012_labels14_gettext_labels"),
    ]

    operations = [
        migrations.RunPython(_fillfactor(50), _fillfactor(70)),
    ]
