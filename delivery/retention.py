"""Retention: prune finished deliveries, their attempts and their events after WEBHOOKS_RETENTION_DAYS.

Each batch is its own short transaction (rows locked with SKIP LOCKED, so a
worker or a redelivery is never kept waiting), and an unfinished delivery
(pending or held) is never pruned, however old. The charts' hourly roll-up
(AttemptHour) goes by the same period. `deliveries_prune_preview` counts what
a run would remove, deleting nothing (`prune_deliveries --dry-run`).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from delivery.models import Attempt, AttemptHour, Delivery, Event

MAX_BATCHES = 1000  # per run; the next scheduled run carries on
BATCH_SIZE = 1000  # rows per pruning transaction


def _cutoff(days: float | None) -> datetime:
    days = settings.WEBHOOKS_RETENTION_DAYS if days is None else days
    return timezone.now() - timedelta(days=days)


def _old_deliveries(cutoff: datetime):
    return Delivery.objects.filter(completed_at__lt=cutoff).exclude(state__in=Delivery.UNFINISHED)


def deliveries_prune(*, days: float | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Delete what finished before the retention period; return counts of deliveries, events and roll-up rows."""
    batch_size = batch_size or BATCH_SIZE
    cutoff = _cutoff(days)
    old_deliveries = _old_deliveries(cutoff).order_by("completed_at")
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
        "attempt_hours": _delete_in_batches(AttemptHour.objects.filter(hour__lt=cutoff).order_by("hour"),
                                            batch_size=batch_size),
    }


def deliveries_prune_preview(*, days: float | None = None) -> dict:
    """Count what deliveries_prune would delete now, deleting nothing: {"cutoff", "deliveries", "attempts",
    "events", "attempt_hours"} (a run deletes at most MAX_BATCHES batches of each; the next run goes on)."""
    cutoff = _cutoff(days)
    old = _old_deliveries(cutoff)
    staying = Delivery.objects.filter(event=OuterRef("pk")).filter(
        Q(state__in=Delivery.UNFINISHED) | Q(completed_at__isnull=True) | Q(completed_at__gte=cutoff))
    return {
        "cutoff": cutoff,
        "deliveries": old.count(),
        "attempts": Attempt.objects.filter(delivery__in=old).count(),
        "events": Event.objects.filter(created_at__lt=cutoff).filter(~Exists(staying)).count(),
        "attempt_hours": AttemptHour.objects.filter(hour__lt=cutoff).count(),
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
