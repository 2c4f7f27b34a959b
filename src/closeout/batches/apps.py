from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "closeout.batches"
    label = "batches"
    verbose_name = "批量处理 / Batch jobs"

    def ready(self) -> None:
        from closeout.batches import signals

        signals.connect()
