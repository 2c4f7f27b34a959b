"""Keyset pages in both directions, with ties on the sort column, and counts that are exact
up to a bound and estimated beyond it (PostgreSQL's planner)."""

from datetime import date

import pytest
from django.db import connection

from closeout.core.paging import count_estimate, keyset_page
from closeout.documents.models import Document
from tests.factories import PO, Org, make_document

pytestmark = pytest.mark.django_db


def _numbers(rows: list[Document]) -> list[str]:
    return [d.number for d in rows]


@pytest.mark.parametrize("sort", ["number", "-number", "document_date", "-document_date", "-id"])
def test_walking_forward_then_back_visits_every_row_once_in_order(org: Org, sort: str) -> None:
    # Seven documents on three dates: ties on the date are broken by id.
    for n, day in enumerate([3, 1, 2, 1, 3, 2, 1]):
        make_document(PO, org.dept_a, number=f"P-{n}", document_date=date(2026, 11, day))
    qs = Document.objects.all()
    field = sort.lstrip("-")
    expected = _numbers(list(qs.order_by(sort, "-pk" if sort.startswith("-") else "pk")))
    if field == "id":
        expected = _numbers(list(qs.order_by(sort)))

    pages, cursor = [], ""
    while True:
        page = keyset_page(qs, sort=sort, size=3, after=cursor)
        pages.append(page)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert [n for p in pages for n in _numbers(p.rows)] == expected
    assert pages[0].prev_cursor == "" and all(p.prev_cursor for p in pages[1:])

    # And back from the last page to the first, page by page.
    back, cursor = [pages[-1]], pages[-1].prev_cursor
    while cursor:
        page = keyset_page(qs, sort=sort, size=3, before=cursor)
        back.append(page)
        cursor = page.prev_cursor
    assert [_numbers(p.rows) for p in reversed(back)] == [_numbers(p.rows) for p in pages]


def test_a_damaged_cursor_starts_again_from_the_first_page(org: Org) -> None:
    for n in range(3):
        make_document(PO, org.dept_a, number=f"D-{n}")
    qs = Document.objects.all()
    first = keyset_page(qs, sort="number", size=2)
    for junk in ("", "x|y", "D-1|", "|" + "9" * 40):
        assert _numbers(keyset_page(qs, sort="number", size=2, after=junk).rows) == _numbers(
            first.rows
        )


def test_counts_are_exact_up_to_the_bound(org: Org) -> None:
    for _ in range(4):
        make_document(PO, org.dept_a)
    count = count_estimate(Document.objects.all(), exact_up_to=10)
    assert (count.value, count.exact) == (4, True)


@pytest.mark.postgres_only
def test_beyond_the_bound_postgresql_estimates_and_says_so(org: Org) -> None:
    for _ in range(6):
        make_document(PO, org.dept_a)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_document")
    count = count_estimate(Document.objects.all(), exact_up_to=3)
    assert not count.exact and count.value >= 4
