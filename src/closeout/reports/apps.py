from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "closeout.reports"
    label = "reports"
    verbose_name = _("reports and diagnostics")

    def ready(self) -> None:
        from closeout.batches.hooks import on_batch_finished
        from closeout.notifications.catalog import register_labels
        from closeout.reports.tasks import batch_verify_after_commit

        on_batch_finished(batch_verify_after_commit)
        register_labels("diagnostic_check", _check_label)


def _check_label(code: str, lang: str) -> str:
    from django.utils import translation

    from closeout.reports.diagnostics import CHECKS_BY_CODE

    if code not in CHECKS_BY_CODE:
        return code
    with translation.override(lang):
        return str(CHECKS_BY_CODE[code].label)
