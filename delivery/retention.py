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


def deliveries_prune(*, days: float | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Delete what finished before the retention period; return counts of deliveries and events deleted."""
    days = settings.WEBHOOKS_RETENTION_DAYS if days is None else days
    batch_size = batch_size or settings.WEBHOOKS_RETENTION_BATCH
    cutoff = timezone.now() - timedelta(days=days)
    deleted = {"deliveries": 0, "events": 0}
    for _ in range(MAX_BATCHES):
        n = _prune_deliveries_batch(cutoff=cutoff, batch_size=batch_size)
        deleted["deliveries"] += n
        if n < batch_size:
            break
    for _ in range(MAX_BATCHES):
        n = _prune_events_batch(cutoff=cutoff, batch_size=batch_size)
        deleted["events"] += n
        if n < batch_size:
            break
    return deleted


def _prune_deliveries_batch(*, cutoff, batch_size: int) -> int:
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(completed_at__lt=cutoff)
            .exclude(state__in=Delivery.UNFINISHED)
            .order_by("completed_at")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:batch_size]
        )
        if ids:
            # Attempts go with their delivery (one DELETE each, no per-row signals).
            Delivery.objects.filter(id__in=ids).delete()
    return len(ids)


def _prune_events_batch(*, cutoff, batch_size: int) -> int:
    """Delete events older than the cutoff that no delivery refers to any more."""
    with transaction.atomic():
        ids = list(
            Event.objects.filter(created_at__lt=cutoff)
            .filter(~Exists(Delivery.objects.filter(event=OuterRef("pk"))))
            .order_by("created_at")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:batch_size]
        )
        if ids:
            Event.objects.filter(id__in=ids).delete()
    return len(ids)
