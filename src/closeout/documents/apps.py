from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "closeout.documents"
    label = "documents"
    verbose_name = "单据 / Documents"

    def ready(self) -> None:
        from closeout.core.labels import label_in
        from closeout.documents.models import DocType
        from closeout.notifications.catalog import register_labels

        def doc_type_label(code: str, lang: str) -> str:
            return label_in(DocType(code).label, lang) if code in DocType.values else code

        register_labels("doc_type", doc_type_label)
