"""Import of close instructions from Excel or CSV (导入结案指令, S18): validation stores the
report of every row (read by `import_parse`, checked by `import_checks`; nothing changed), and
the execution runs the valid rows as one batch job whose items carry their own parameters
(`import_run`). The public names of the three steps are importable from here."""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone, translation
from django.utils.translation import pgettext

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import audit_record
from closeout.batches.import_checks import import_check
from closeout.batches.import_columns import (
    ACTIONS,
    COLUMN,
    COLUMNS,
    RESULT_HEADERS,
    check_table,
    doc_type_choice,
    map_columns,
    reason_choice,
)
from closeout.batches.import_files import ImportFileRefused, Table, read_table
from closeout.batches.import_parse import CONTROL, RowCheck
from closeout.batches.messages import message_text
from closeout.batches.models import (
    BatchAction,
    BatchItem,
    BatchJob,
    BatchState,
    ImportFile,
    ItemState,
)
from closeout.core.errors import InvalidInput, NotFound, PermissionDenied
from closeout.core.inputs import check_no_nul

# --- validate, store, execute --------------------------------------------------------------


def _sha256(upload: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    while chunk := upload.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return digest.hexdigest(), size


def _stored(value: Any) -> Any:
    """A cell as JSON can keep it (PostgreSQL's jsonb refuses NUL characters)."""
    if isinstance(value, str):
        if value.isprintable():
            return value
        return CONTROL.sub("\ufffd", value).encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def import_validate(*, actor: AbstractBaseUser, upload: IO[bytes], file_name: str) -> ImportFile:
    """Read and check an uploaded file; store the report and audit it. Changes no document.
    A file that cannot be read at all raises ImportFileRefused and stores nothing."""
    require(actor, Perm.IMPORT_RUN, what="imports")
    check_no_nul(file_name, field="file")
    sha256, size = _sha256(upload)
    table = read_table(upload, file_name)
    keys = check_table(table)
    checks = import_check(actor=actor, table=table, keys=keys)
    report = {"headers": table.headers, "columns": keys, "rows": _report_rows(checks, table)}
    total, valid = len(checks), sum(1 for c in checks if c.ok)
    file_format, encoding = table.file_format, table.encoding
    # The checked rows (and the read cells they hold) go before the report is written: a big
    # file's report is serialized while only it is held, not the table and checks beside it.
    del checks, table
    with transaction.atomic():
        imported = ImportFile.objects.create(
            file_name=file_name[:255],
            sha256=sha256,
            size=size,
            file_format=file_format,
            encoding=encoding,
            uploaded_by_id=actor.pk,
            total_rows=total,
            valid_rows=valid,
            error_rows=total - valid,
            report=report,
        )
        _audit(
            actor,
            AuditAction.IMPORT_VALIDATED,
            imported,
            size=size,
            format=file_format,
            encoding=encoding,
            rows=imported.total_rows,
            valid_rows=imported.valid_rows,
            error_rows=imported.error_rows,
        )
    return imported


def _report_rows(checks: list[RowCheck], table: Table) -> list[dict[str, Any]]:
    """The stored report of every row: cells as JSON keeps them, errors, note, outcome,
    document, label and the parameters of a valid row."""
    width = len(table.headers)
    return [
        {
            "r": c.row,
            "c": [_stored(v) for v in (c.cells + [""] * (width - len(c.cells)))[:width]],
            "e": [list(e) for e in c.errors],
            "n": c.note,
            "o": c.outcome,
            "d": c.document.pk if c.document is not None and c.ok else None,
            "l": c.label,
            "p": c.params() if c.ok else {},
        }
        for c in checks
    ]


def import_get(*, actor: AbstractBaseUser, import_id: int) -> ImportFile:
    """An import of the actor's own (imports hold other users' data only for them)."""
    return _owned(actor, ImportFile.objects.filter(pk=import_id).first(), import_id)


def _owned(actor: AbstractBaseUser, imported: ImportFile | None, import_id: int) -> ImportFile:
    if imported is None:
        raise NotFound(f"no import #{import_id}")
    if imported.uploaded_by_id != actor.pk:
        raise PermissionDenied(
            f"import #{import_id} belongs to another user", details={"rule": "owner_only"}
        )
    return imported


def _audit(actor: AbstractBaseUser, action: AuditAction, imported: ImportFile, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type=AuditObject.IMPORT,
        object_id=imported.pk,
        object_repr=str(imported)[:200],
        data={"file_name": imported.file_name, "sha256": imported.sha256, **data},
    )


def import_execute(
    *, actor: AbstractBaseUser, import_file: ImportFile, workers: int = 1
) -> BatchJob:
    """Run the valid rows of a validated file as one batch job (each row all-or-nothing, with
    its own result). Rows with errors never run. Executing an import twice is refused: the
    first run's batch holds the results, and running its rows again would change nothing."""
    from closeout.batches.services import batch_start

    with transaction.atomic():
        require(actor, Perm.IMPORT_RUN, what="imports")
        imported = _owned(
            actor,
            ImportFile.objects.select_for_update(no_key=True)
            .defer("report")
            .filter(pk=import_file.pk)
            .first(),
            import_file.pk,
        )
        if imported.job_id is not None:
            raise InvalidInput(
                f"import #{imported.pk} was already executed as batch #{imported.job_id}; "
                "running it again would change nothing",
                details={"batch": imported.job_id},
            )
        job = _job_for(actor, imported)
        if not job.total:
            raise InvalidInput(
                f"import #{imported.pk} has no valid row to execute: fix the rows with errors "
                "and upload the file again",
                details={"field": "file"},
            )
        imported.job = job
        imported.executed_at = timezone.now()
        imported.save(update_fields=["job", "executed_at"])
        _audit(
            actor,
            AuditAction.IMPORT_EXECUTED,
            imported,
            batch=job.pk,
            rows_run=job.total,
            rows_with_errors_not_run=imported.error_rows,
            predicted=job.predicted,
        )
    # Started after the commit above: a big job takes a backup first, which runs outside a
    # transaction (a failed backup leaves the job unstarted, to start from its batch page);
    # a broker that did not answer is said by batch_start (the job waits).
    return batch_start(actor=actor, job=job, workers=workers)


# The valid rows of a stored report become batch items inside the database: no row of the
# report (cells and errors of every row) is read into memory, no model instance is built.
_ITEMS_FROM_REPORT = {
    "postgresql": (
        "INSERT INTO {items} (job_id, document_id, request_id, label, state, predicted, "
        "predicted_message, outcome, message, processed_at, worker, row_no, params) "
        "SELECT %s, (e->>'d')::bigint, NULL, left(e->>'l', 100), %s, coalesce(e->>'o', ''), "
        "left(coalesce(e->>'n', ''), 2000), '', '', NULL, '', (e->>'r')::int, "
        "coalesce(e->'p', '{{}}'::jsonb) "
        "FROM {imports} f, jsonb_array_elements(f.report->'rows') WITH ORDINALITY AS x(e, n) "
        "WHERE f.id = %s AND jsonb_array_length(e->'e') = 0 "
        "AND coalesce(e->>'d', '') NOT IN ('', '0') ORDER BY x.n"
    ),
    "sqlite": (
        "INSERT INTO {items} (job_id, document_id, request_id, label, state, predicted, "
        "predicted_message, outcome, message, processed_at, worker, row_no, params) "
        "SELECT %s, json_extract(e.value, '$.d'), NULL, substr(json_extract(e.value, '$.l'), 1, "
        "100), %s, coalesce(json_extract(e.value, '$.o'), ''), "
        "substr(coalesce(json_extract(e.value, '$.n'), ''), 1, 2000), '', '', NULL, '', "
        "json_extract(e.value, '$.r'), coalesce(json_extract(e.value, '$.p'), '{{}}') "
        "FROM {imports} f, json_each(f.report, '$.rows') e "
        "WHERE f.id = %s AND json_array_length(e.value, '$.e') = 0 "
        "AND coalesce(json_extract(e.value, '$.d'), 0) NOT IN ('', 0) ORDER BY e.key"
    ),
}


def _job_for(actor: AbstractBaseUser, imported: ImportFile) -> BatchJob:
    """The batch job of an import's valid rows: one item per row with its own parameters,
    written set-based from the stored report (one INSERT … SELECT)."""
    job = BatchJob.objects.create(
        action=BatchAction.IMPORT,
        selection={
            "import": imported.pk,
            "file_name": imported.file_name,
            "sha256": imported.sha256,
        },
        created_by_id=actor.pk,
        state=BatchState.PREVIEWED,
        total=0,
        predicted={},
    )
    qn = connection.ops.quote_name
    sql = _ITEMS_FROM_REPORT[connection.vendor].format(
        items=qn(BatchItem._meta.db_table), imports=qn(ImportFile._meta.db_table)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [job.pk, ItemState.PENDING, imported.pk])
    predicted = dict(
        BatchItem.objects.filter(job=job)
        .order_by()
        .values_list("predicted")
        .annotate(n=Count("id"))
        .values_list("predicted", "n")
    )
    job.total, job.predicted = sum(predicted.values()), predicted
    job.save(update_fields=["total", "predicted"])
    return job


# --- reading the report --------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    row: int
    cells: list[Any]
    ok: bool
    columns: list[str]  # headers of the columns in error
    message: str
    outcome: str
    document_id: int | None
    label: str


def _header_of(imported: ImportFile, key: str) -> str:
    report = imported.report
    for header, column in zip(report.get("headers", []), report.get("columns", []), strict=False):
        if column == key:
            return str(header)
    return COLUMN[key].header if key in COLUMN else key


def _row_message(message: object, language: str) -> str:
    """A stored row message in `language`: a message record (msgid and parameters) read in it,
    a plain text through the catalogue (the texts that are gettext entries), else as stored."""
    if isinstance(message, dict):
        return message_text(message, language)
    text = str(message or "")
    with translation.override(language):
        return translation.gettext(text) if text else text


def report_rows(
    imported: ImportFile, *, errors_only: bool = False, language: str = "en"
) -> Iterator[ReportRow]:
    """Each row's result as the report shows it, its messages in `language` (English, as the
    API and the CLI read them, unless a page asks for its own)."""
    headers = {key: _header_of(imported, key) for key in COLUMN}
    for r in imported.report.get("rows", []):
        if errors_only and not r["e"]:
            continue
        columns = list(dict.fromkeys(headers.get(c, c) for c, _m in r["e"]))
        messages = [m for _c, m in r["e"]] if r["e"] else [r["n"]]
        message = "; ".join(_row_message(m, language) for m in messages)
        yield ReportRow(r["r"], r["c"], not r["e"], columns, message, r["o"], r.get("d"), r["l"])


def report_table(
    imported: ImportFile, *, language: str = "en"
) -> tuple[list[str], Iterable[list[Any]]]:
    """The uploaded columns plus the row number, result and error columns (for .xlsx), in
    `language` (a page passes its own; the rows are written after the request): a Chinese
    workbook has Chinese headings and results; an English one (the CLI's) keeps the
    template's bilingual headings and ok/error, as it always had."""
    with translation.override(language):
        if language.startswith("zh"):
            added = [pgettext("import report", h) for h in ("row", "result", "column", "message")]
            ok, error = pgettext("import report", "ok"), pgettext("import report", "error")
        else:
            added, ok, error = list(RESULT_HEADERS), "ok", "error"
    headers = [str(h) for h in imported.report.get("headers", [])] + added

    def rows() -> Iterator[list[Any]]:
        for r in report_rows(imported, language=language):
            yield [*r.cells, r.row, ok if r.ok else error, ", ".join(r.columns), r.message]

    return headers, rows()


def import_list_for(actor: AbstractBaseUser, *, limit: int = 20) -> list[ImportFile]:
    return list(
        ImportFile.objects.filter(uploaded_by_id=actor.pk)
        .defer("report")
        .select_related("job")
        .order_by("-uploaded_at", "-id")[:limit]
    )


__all__ = [
    "ACTIONS",
    "COLUMNS",
    "ImportFileRefused",
    "RowCheck",
    "check_table",
    "doc_type_choice",
    "import_check",
    "import_execute",
    "import_get",
    "import_list_for",
    "import_validate",
    "map_columns",
    "reason_choice",
    "report_rows",
    "report_table",
]
