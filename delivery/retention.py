"""Retention: prune finished deliveries, their attempts and their events after WEBHOOKS_RETENTION_DAYS.

Each batch is its own short transaction (rows locked with SKIP LOCKED, so a
worker or a redelivery is never kept waiting), and an unfinished delivery
(pending or held) is never pruned, however old.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from delivery.models import Delivery, Event

MAX_BATCHES = 1000  # per run; the next scheduled run carries on
BATCH_SIZE = 1000  # rows per pruning transaction


def deliveries_prune(*, days: float | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Delete what finished before the retention period; return counts of deliveries and events deleted."""
    days = settings.WEBHOOKS_RETENTION_DAYS if days is None else days
    batch_size = batch_size or BATCH_SIZE
    cutoff = timezone.now() - timedelta(days=days)
    old_deliveries = (
        Delivery.objects.filter(completed_at__lt=cutoff).exclude(state__in=Delivery.UNFINISHED).order_by("completed_at")
    )
    # Events older than the cutoff that no delivery refers to any more.
    old_events = (
        Event.objects.filter(created_at__lt=cutoff)
        .filter(~Exists(Delivery.objects.filter(event=OuterRef("pk"))))
        .order_by("created_at")
    )
    # Deliveries first: their events become free to go. Attempts go with their delivery (cascade).
    return {
        "deliveries": _delete_in_batches(old_deliveries, batch_size=batch_size),
        "events": _delete_in_batches(old_events, batch_size=batch_size),
    }


def _delete_in_batches(queryset, *, batch_size: int) -> int:
    """Delete the queryset's rows batch by batch, each in a short transaction; return how many."""
    deleted = 0
    for _ in range(MAX_BATCHES):
        with transaction.atomic():
            ids = list(queryset.select_for_update(skip_locked=True).values_list("id", flat=True)[:batch_size])
            if ids:
                queryset.model.objects.filter(id__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch_size:
            break
    return deleted
