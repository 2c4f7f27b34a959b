"""Audit events record the key their MAC was made with and the HTTP request that caused them.
Events written before keep key_id "": they were sealed with plain SHA-256 and still verify so."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_import_diagnostics_archive_actions'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='http_request_id',
            field=models.CharField(blank=True, max_length=64, verbose_name='请求编号 HTTP request id'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='key_id',
            field=models.CharField(blank=True, max_length=16, verbose_name='密钥 key id'),
        ),
    ]
