from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "closeout.documents"
    label = "documents"
    verbose_name = "单据 / Documents"

    def ready(self) -> None:
        from closeout.core.doctypes import doc_type_known, doc_type_label_lazy
        from closeout.core.labels import label_in
        from closeout.notifications.catalog import register_labels

        def doc_type_label_in(code: str, lang: str) -> str:
            return label_in(doc_type_label_lazy(code), lang) if doc_type_known(code) else code

        register_labels("doc_type", doc_type_label_in)
