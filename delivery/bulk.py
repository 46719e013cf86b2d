"""Bulk redeliver: every finished delivery of a filtered Delivery Log, through the one-by-one service.

Each delivery takes the same transition as Redeliver (delivery.states.delivery_redeliver);
the trail gets one entry for the lot, and the endpoint one wake-up on commit.

What is sent is what was confirmed: the confirmation page counts the set as of a moment
(`created_before`, so that deliveries created afterwards stay out of it), and the send
checks that the set, counted again under that bound, still has the confirmed number of
deliveries; if not (a pending one finished meanwhile, one was redelivered on its own), it
sends nothing and says how many there are now, for the page to ask again.
"""

import uuid
from datetime import datetime

from django.db import transaction

from delivery import states, wakeups
from delivery.models import Delivery
from delivery.selectors import delivery_log_queryset
from subscriptions.models import Subscription, TrailEntry, trail_by

# More than this many in one go is refused: narrow the filters (or use Retry failed since).
BULK_LIMIT = 10_000


class SetChanged(Exception):
    """The filtered set no longer has the confirmed number of deliveries; `count` is how many it has now."""

    def __init__(self, count: int):
        super().__init__(f"{count} deliveries match now")
        self.count = count


def deliveries_redeliverable(
    *, subscription: Subscription, state: str | None = None, activity_type: str | None = None,
    event_id: uuid.UUID | None = None, since: datetime | None = None, until: datetime | None = None,
    created_before: datetime | None = None,
):
    """Return the finished deliveries of the filtered log (the set Bulk redeliver would send), newest first.

    `created_before` is the confirmation's moment: deliveries created since are not part of what was confirmed.
    """
    qs = delivery_log_queryset(
        subscription=subscription, state=state, activity_type=activity_type, event_id=event_id, since=since,
        until=until,
    ).exclude(state__in=Delivery.UNFINISHED)
    return qs if created_before is None else qs.filter(created_at__lt=created_before)


@transaction.atomic
def deliveries_redeliver_filtered(*, subscription: Subscription, confirmed: int, created_before: datetime, by=None,
                                  description: str = "", **filters) -> int:
    """Redeliver the confirmed set of the filtered log, oldest first; return how many (0 if paused or deleted).

    The set is the filtered finished deliveries created before `created_before`; if it does not
    have exactly `confirmed` deliveries (or has more than BULK_LIMIT), nothing is sent and
    SetChanged says how many it has now.
    """
    live = Subscription.objects.select_for_update().filter(
        id=subscription.id, deleted_at__isnull=True, state=Subscription.State.ACTIVE).first()
    if live is None:
        return 0
    rows = list(deliveries_redeliverable(subscription=live, created_before=created_before, **filters).only("id")
                .order_by("created_at", "id")[: BULK_LIMIT + 1])
    if len(rows) != confirmed or len(rows) > BULK_LIMIT:
        raise SetChanged(len(rows))
    count = sum(states.delivery_redeliver(delivery=d) for d in rows)
    if count:
        transaction.on_commit(lambda: wakeups.endpoints_awaken([live.id]))
        TrailEntry.objects.create(
            subscription=live, **trail_by(by), action=TrailEntry.Action.REDELIVERED,
            detail=f"{count} deliver{'y' if count == 1 else 'ies'} of the Delivery Log ({description or 'all'})",
        )
    return count
