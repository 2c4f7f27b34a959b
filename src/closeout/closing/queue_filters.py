"""Saved filters of the work queue (常用筛选): each user's own named filters, per document type.

A saved filter changes nothing but the user's own view, so it is not audited; it holds only a
query string that the page validated, and it is read and deleted only by its owner."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from closeout.closing.models import SavedQueueFilter
from closeout.core.errors import Conflict, InvalidInput, NotFound

MAX_FILTERS_PER_TYPE = 30


def queue_filters_of(user: AbstractBaseUser, doc_type: str) -> list[SavedQueueFilter]:
    return list(SavedQueueFilter.objects.filter(user_id=user.pk, doc_type=doc_type))


@transaction.atomic
def queue_filter_save(
    *, actor: AbstractBaseUser, doc_type: str, name: str, query: str
) -> SavedQueueFilter:
    """Save (or replace) the filter called `name`."""
    name = name.strip()
    if not name:
        raise InvalidInput(
            gettext_noop("a saved filter needs a name"), params={}, details={"field": "name"}
        )
    if not query:
        raise InvalidInput(
            gettext_noop("the queue shows no filter to save: filter first, then save"),
            params={},
            details={"field": "query"},
        )
    mine = SavedQueueFilter.objects.select_for_update().filter(user_id=actor.pk, doc_type=doc_type)
    existing = mine.filter(name=name).first()
    if existing is not None:
        existing.query = query
        existing.save(update_fields=["query"])
        return existing
    if mine.count() >= MAX_FILTERS_PER_TYPE:
        raise InvalidInput(
            gettext_noop("at most %(n)s saved filters per document type: delete one first"),
            params={"n": MAX_FILTERS_PER_TYPE},
            details={"field": "name"},
        )
    try:
        with transaction.atomic():
            return SavedQueueFilter.objects.create(
                user_id=actor.pk, doc_type=doc_type, name=name, query=query
            )
    except IntegrityError as exc:  # the same name saved at the same moment
        raise Conflict(
            gettext_noop("a filter named '%(name)s' was just saved; try again"),
            params={"name": name},
        ) from exc


@transaction.atomic
def queue_filter_delete(*, actor: AbstractBaseUser, filter_id: int) -> None:
    deleted, _ = SavedQueueFilter.objects.filter(pk=filter_id, user_id=actor.pk).delete()
    if not deleted:
        raise NotFound(
            gettext_noop("no saved filter #%(id)s of yours"),
            params={"id": filter_id},
            details={"filter": filter_id},
        )
