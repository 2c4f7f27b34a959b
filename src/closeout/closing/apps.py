from django.apps import AppConfig


class ClosingConfig(AppConfig):
    name = "closeout.closing"
    label = "closing"
    verbose_name = "结案 / Closing"

    def ready(self) -> None:
        from django.db.models import F

        from closeout.closing.models import ReasonCode
        from closeout.notifications.catalog import ZH, register_labels

        def reason_label(code: str, lang: str) -> str:
            field = "label_zh" if lang == ZH else "label_en"
            label = (
                ReasonCode.objects.filter(code=code)
                .order_by(F("company_id").asc(nulls_first=True))  # the group's name first
                .values_list(field, flat=True)
                .first()
            )
            return label or code

        register_labels("reason", reason_label)

        from closeout.closing.dimension_services import reopen_for_event
        from closeout.closing.dimensions import closed_dimensions, quarantine_reason
        from closeout.documents.hooks import EventHooks, register

        register(
            EventHooks(
                quarantine_reason=quarantine_reason,
                reopen_for_event=reopen_for_event,
                lines_with_closed_dimensions=lambda ids: set(closed_dimensions(ids)),
            )
        )
