"""The landing page: counts per type and state, so the embedded app shows its data."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from closeout.documents.models import CloseState, DocType, Document


@login_required
def home(request: HttpRequest) -> HttpResponse:
    counts = {
        (row["doc_type"], row["close_state"]): row["n"]
        for row in Document.objects.values("doc_type", "close_state").annotate(n=Count("id"))
    }
    table = [
        (label, [counts.get((code, state), 0) for state in CloseState.values])
        for code, label in DocType.choices
    ]
    return render(request, "home.html", {"states": CloseState.labels, "table": table})
