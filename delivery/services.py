"""Operator actions on deliveries: Redeliver one, retry the failed ones since a date.

Each is a state transition (delivery.states) with its trail entry, and wakes
the endpoint once the operator's transaction commits.
"""

from datetime import UTC, datetime

from django.db import transaction

from delivery import states, wakeups
from delivery.models import Delivery
from subscriptions.models import Subscription, TrailEntry, trail_by


@transaction.atomic
def delivery_redeliver(*, delivery: Delivery, by=None) -> bool:
    """Send a finished delivery again (same event id, a fresh retry schedule); return False if unfinished."""
    if not states.delivery_redeliver(delivery=delivery):
        return False
    TrailEntry.objects.create(subscription_id=delivery.subscription_id, **trail_by(by),
                              action=TrailEntry.Action.REDELIVERED, detail=delivery.event.webhook_id)
    subscription_id = delivery.subscription_id
    transaction.on_commit(lambda: wakeups.endpoints_awaken([subscription_id]))
    return True


@transaction.atomic
def deliveries_recover_since(*, subscription: Subscription, since: datetime, by=None) -> int:
    """Send again every failed delivery of the subscription created since `since`, oldest first; return how many.

    Each keeps its event id and gets a fresh retry schedule, like Redeliver. On a
    paused subscription they are held, to go on Resume; a deleted one recovers nothing.
    """
    live = Subscription.objects.select_for_update().filter(id=subscription.id, deleted_at__isnull=True).first()
    if live is None:
        return 0
    count = states.deliveries_recover(subscription=live, since=since)
    if not count:
        return 0
    TrailEntry.objects.create(
        subscription=live, **trail_by(by), action=TrailEntry.Action.RECOVERED,
        detail=f"{count} failed deliveries since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        + ("" if live.is_active else ", held until Resume"),
    )
    if live.is_active:
        transaction.on_commit(lambda: wakeups.endpoints_awaken([live.id]))
    return count
