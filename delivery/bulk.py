"""Bulk redeliver: every finished delivery of a filtered Delivery Log, through the one-by-one service.

Each delivery takes the same transition as Redeliver (delivery.states.delivery_redeliver);
the trail gets one entry for the lot, and the endpoint one wake-up on commit.
"""

import uuid
from datetime import datetime

from django.db import transaction

from delivery import states, wakeups
from delivery.models import Delivery
from delivery.selectors import delivery_log_queryset
from subscriptions.models import Subscription, TrailEntry

# More than this many in one go is refused: narrow the filters (or use Retry failed since).
BULK_LIMIT = 10_000


def deliveries_redeliverable(
    *, subscription: Subscription, state: str | None = None, activity_type: str | None = None,
    event_id: uuid.UUID | None = None, since: datetime | None = None, until: datetime | None = None,
):
    """Return the finished deliveries of the filtered log (the set Bulk redeliver would send), newest first."""
    return delivery_log_queryset(
        subscription=subscription, state=state, activity_type=activity_type, event_id=event_id, since=since,
        until=until,
    ).exclude(state__in=Delivery.UNFINISHED)


@transaction.atomic
def deliveries_redeliver_filtered(*, subscription: Subscription, by=None, description: str = "", **filters) -> int:
    """Redeliver every finished delivery of the filtered log, oldest first; return how many (0 if paused or deleted).

    Refuses (returns 0) above BULK_LIMIT rows, so that the count confirmed is the count sent.
    """
    live = Subscription.objects.select_for_update().filter(
        id=subscription.id, deleted_at__isnull=True, state=Subscription.State.ACTIVE).first()
    if live is None:
        return 0
    rows = list(deliveries_redeliverable(subscription=live, **filters).only("id")
                .order_by("created_at", "id")[: BULK_LIMIT + 1])
    if len(rows) > BULK_LIMIT:
        return 0
    count = sum(states.delivery_redeliver(delivery=d) for d in rows)
    if count:
        transaction.on_commit(lambda: wakeups.endpoints_awaken([live.id]))
        TrailEntry.objects.create(
            subscription=live, actor=by, action=TrailEntry.Action.REDELIVERED,
            detail=f"{count} deliver{'y' if count == 1 else 'ies'} of the Delivery Log ({description or 'all'})",
        )
    return count
