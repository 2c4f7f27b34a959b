"""Reads of batch jobs: progress and per-item results."""

from django.db.models import QuerySet

from closeout.batches.models import BatchItem, BatchJob


def batch_results(job: BatchJob) -> QuerySet[BatchItem]:
    return BatchItem.objects.filter(job=job).order_by("pk")
