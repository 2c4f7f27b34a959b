from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "closeout.batches"
    label = "batches"
    verbose_name = "批量处理 / Batch jobs"
