from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "closeout.documents"
    label = "documents"
    verbose_name = "单据 / Documents"
