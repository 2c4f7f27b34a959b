"""Admin of imports: read-only (an import is changed only by validating and executing it)."""

from django.contrib import admin

from closeout.batches.models import ImportFile
from closeout.core.admin import ReadOnlyAdmin


@admin.register(ImportFile)
class ImportFileAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "file_name",
        "uploaded_by",
        "uploaded_at",
        "total_rows",
        "valid_rows",
        "error_rows",
        "job",
    )
    search_fields = ("file_name", "sha256")
    exclude = ("report",)
