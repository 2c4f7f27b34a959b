"""The work queue (待结案): one tab per document type the user may see, filters, sorting,
pages by keyset in both directions with a (possibly estimated) total, export, saved filters."""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET, require_POST

from closeout.access.permissions import Perm
from closeout.access.selectors import doc_types_with, documents_visible_to
from closeout.access.services import user_has_perm
from closeout.closing.queue import STATES_TO_CLOSE, QueueFilter, document_queue
from closeout.closing.queue_filters import (
    queue_filter_delete,
    queue_filter_save,
    queue_filters_of,
)
from closeout.closing.selectors import verdicts_for
from closeout.core.doctypes import doc_type_codes
from closeout.core.errors import DomainError
from closeout.core.exports import check_format, export_response
from closeout.core.paging import count_estimate, keyset_page
from closeout.documents.models import CloseState, DocType, Document
from closeout.web.forms import QueueForm, SavedFilterForm
from closeout.web.views import _user, refusal_text

PAGE_SIZE = 50
DEFAULT_SORT = "-id"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # The sort field, "" for a column that does not sort.
    sort: str = ""
    numeric: bool = False


def _columns() -> list[Column]:
    return [
        Column("number", gettext("Number"), "number"),
        Column("date", gettext("Date"), "document_date"),
        Column("partner", gettext("Partner")),
        Column("org", gettext("Organisation")),
        Column("amount", gettext("Amount"), "total_amount_company", numeric=True),
        Column("state", gettext("Close state")),
        Column("verdict", gettext("Checklist")),
    ]


def viewable_types(user: AbstractBaseUser) -> list[str]:
    """The document types `user` may view somewhere: only these get a tab."""
    allowed = doc_types_with(user, Perm.DOCUMENT_VIEW)
    return [code for code in doc_type_codes() if allowed is None or code in allowed]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    types = viewable_types(_user(request))
    if not types:
        return redirect("web:inbox")
    return redirect("web:queue", doc_type=types[0])


# Counting a million documents per page view costs more than the page itself; the tab counts
# are kept for a minute per visibility scope.
TAB_COUNTS_SECONDS = 60


def _to_close_counts(visible: Q) -> dict[str, int]:
    """Per type, the documents still to close (the tab's default filter)."""
    key = "closeout:web:tab-counts:" + hashlib.sha256(str(visible).encode()).hexdigest()
    counts: dict[str, int] | None = cache.get(key)
    if counts is None:
        counts = dict(
            Document.objects.filter(visible, close_state__in=STATES_TO_CLOSE)
            .values_list("doc_type")
            .annotate(n=Count("pk"))
            .values_list("doc_type", "n")
        )
        cache.set(key, counts, TAB_COUNTS_SECONDS)
    return counts


def _queue_export_headers() -> list[str]:
    return [
        gettext("Number"),
        gettext("Partner"),
        gettext("Date"),
        gettext("Organisation unit"),
        gettext("State"),
        gettext("Verdict"),
        gettext("Currency"),
        gettext("Amount"),
        gettext("Amount (company currency)"),
    ]


EXPORT_CHUNK = 2000


def _queue_export_rows(qs: QuerySet[Document], doc_type: str) -> Iterator[list[Any]]:
    """Every row of the filtered queue, in the page's order, read through one cursor; the
    verdicts are evaluated a chunk of documents at a time (one query per policy per chunk)."""
    chunk: list[Document] = []
    for document in qs.select_related("partner", "org_unit").iterator(chunk_size=EXPORT_CHUNK):
        chunk.append(document)
        if len(chunk) == EXPORT_CHUNK:
            yield from _queue_export_chunk(chunk, doc_type)
            chunk = []
    yield from _queue_export_chunk(chunk, doc_type)


def _verdict_words(verdict: str) -> str:
    """A verdict as the queue page says it; the code itself in an English export (as
    integrations read it)."""
    if not verdict or (get_language() or "").startswith("en"):
        return verdict
    words = {
        "ready": gettext("ready to close"),
        "warning": gettext("warning"),
        "exception": gettext("exception"),
        "blocked": gettext("blocked"),
    }
    return words.get(verdict, verdict)


def _queue_export_chunk(chunk: list[Document], doc_type: str) -> Iterator[list[Any]]:
    open_ids = [d.pk for d in chunk if d.close_state == CloseState.OPEN]
    verdicts = verdicts_for(open_ids, doc_type=doc_type) if open_ids else {}
    for d in chunk:
        yield [
            d.number,
            d.partner.name if d.partner else "",
            d.document_date,
            d.org_unit.code,
            str(d.get_close_state_display()),
            _verdict_words(verdicts[d.pk].verdict if d.pk in verdicts else ""),
            d.currency,
            d.total_amount,
            d.total_amount_company,
        ]


def _sort_links(columns: list[Column], sort: str, params: str) -> list[dict[str, Any]]:
    """Per column: the link that sorts by it (ascending first, then the other way) and, on the
    sorted column, its direction for the arrow and aria-sort."""
    links = []
    for column in columns:
        direction = ""
        if column.sort and sort.lstrip("-") == column.sort:
            direction = "descending" if sort.startswith("-") else "ascending"
        target = f"-{column.sort}" if direction == "ascending" else column.sort
        href = f"?{params}&sort={target}" if column.sort else ""
        links.append({"column": column, "href": href, "direction": direction})
    return links


@login_required
@require_GET
def queue(request: HttpRequest, doc_type: str) -> HttpResponseBase:
    user = _user(request)
    types = viewable_types(user)
    if doc_type not in types:
        raise Http404("unknown document type")
    form = QueueForm(request.GET or None, doc_type=doc_type)
    visible = documents_visible_to(user)
    counts = _to_close_counts(visible)
    labels = dict(DocType.choices)
    tabs = [(code, labels[code], counts.get(code, 0)) for code in types]
    error = ""
    sort = DEFAULT_SORT
    qs: QuerySet[Document] | None = None
    if not form.is_bound or form.is_valid():
        filter_data = form.filter_dict(doc_type) if form.is_bound else form.default_filter(doc_type)
        if form.is_bound:
            sort = form.cleaned_data.get("sort") or DEFAULT_SORT
        try:
            qs = document_queue(QueueFilter.from_dict(filter_data)).filter(visible)
        except DomainError as exc:
            error = refusal_text(exc)
    fmt = request.GET.get("format", "")
    if fmt and qs is not None:
        try:
            return export_response(
                check_format(fmt),
                filename=f"queue-{doc_type}",
                headers=_queue_export_headers(),
                rows=_queue_export_rows(keyset_order(qs, sort), doc_type),
                sheet_title=doc_type
                if (get_language() or "").startswith("en")
                else str(DocType(doc_type).label),
            )
        except DomainError as exc:
            error = refusal_text(exc)
    context = _page_context(request, form, qs, sort, doc_type)
    # A filter that cannot be applied is the caller's mistake: 400, with the errors shown.
    refused = bool(error) or (form.is_bound and not form.is_valid())
    context |= {
        "doc_type": doc_type,
        "doc_type_label": labels[doc_type],
        "tabs": tabs,
        "form": form,
        "error": error,
        "sort": sort,
        "saved": queue_filters_of(user, doc_type),
        "current_query": request.GET.urlencode(),
        "save_form": SavedFilterForm(),
        "can_batch": user_has_perm(user, Perm.BATCH_RUN),
        "help": "queue",
    }
    return render(request, "web/queue.html", context, status=400 if refused else 200)


def keyset_order(qs: QuerySet[Document], sort: str) -> QuerySet[Document]:
    """The queue in page order, for the export."""
    field = sort.lstrip("-")
    tie = "-pk" if sort.startswith("-") else "pk"
    return qs.order_by(sort, tie) if field != "id" else qs.order_by(sort)


def _page_context(
    request: HttpRequest,
    form: QueueForm,
    qs: QuerySet[Document] | None,
    sort: str,
    doc_type: str,
) -> dict[str, Any]:
    params = request.GET.copy()
    for name in ("after", "before", "format", "sort"):
        params.pop(name, None)
    plain = params.urlencode()
    with_sort = f"{plain}&sort={sort}" if plain else f"sort={sort}"
    context: dict[str, Any] = {
        "rows": [],
        "next_cursor": "",
        "prev_cursor": "",
        "total": None,
        "params": with_sort,
        "columns": _sort_links(_columns(), sort, plain),
    }
    if qs is None:
        return context
    data = form.cleaned_data if form.is_bound else {}
    page = keyset_page(
        qs.select_related("partner", "org_unit"),
        sort=sort,
        size=PAGE_SIZE,
        after=data.get("after", ""),
        before=data.get("before", ""),
    )
    open_ids = [d.pk for d in page.rows if d.close_state == CloseState.OPEN]
    verdicts = verdicts_for(open_ids, doc_type=doc_type) if open_ids else {}
    context |= {
        "rows": [(d, verdicts[d.pk].verdict if d.pk in verdicts else "") for d in page.rows],
        "next_cursor": page.next_cursor,
        "prev_cursor": page.prev_cursor,
        "total": count_estimate(qs),
    }
    return context


@login_required
@require_POST
def queue_filter_save_view(request: HttpRequest, doc_type: str) -> HttpResponse:
    """Save the queue's current filter (the query string it was shown with) under a name."""
    user = _user(request)
    if doc_type not in viewable_types(user):
        raise Http404("unknown document type")
    form = SavedFilterForm(request.POST)
    query = QueueForm.clean_query(request.POST.get("query", ""), doc_type)
    if form.is_valid():
        try:
            queue_filter_save(
                actor=user, doc_type=doc_type, name=form.cleaned_data["name"], query=query
            )
            messages.success(request, gettext("Filter saved."))
        except DomainError as exc:
            messages.error(request, refusal_text(exc))
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(f"{reverse('web:queue', args=[doc_type])}?{query}")


@login_required
@require_POST
def queue_filter_delete_view(request: HttpRequest, doc_type: str, pk: int) -> HttpResponse:
    try:
        queue_filter_delete(actor=_user(request), filter_id=pk)
        messages.success(request, gettext("Saved filter deleted."))
    except DomainError as exc:
        messages.error(request, refusal_text(exc))
    return redirect("web:queue", doc_type=doc_type)
