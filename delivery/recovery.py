"""Recovery: "Retry failed deliveries since ..." on a subscription."""

from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from delivery.models import Delivery
from delivery.outbox import enqueue_deliveries, wake_endpoints
from subscriptions.models import Subscription, TrailEntry


@transaction.atomic
def deliveries_recover_since(*, subscription: Subscription, since: datetime, by=None) -> int:
    """Send again every failed delivery of the subscription created since `since`, oldest first; return how many.

    Each keeps its event id and gets a fresh retry schedule, like Redeliver. On a
    paused subscription they are held, to go on Resume; a deleted one recovers nothing.
    """
    live = Subscription.objects.select_for_update().filter(id=subscription.id, deleted_at__isnull=True).first()
    if live is None:
        return 0
    rows = list(
        Delivery.objects.filter(subscription=live, state=Delivery.State.FAILED, created_at__gte=since)
        .order_by("created_at", "id")
        .values_list("id", "subscription_id", "event__is_test")
    )
    ids = [r[0] for r in rows]
    if not ids:
        return 0
    now = timezone.now()
    common = dict(completed_at=None, locked_until=None, schedule_offset=F("attempt_count"))
    if live.is_active:
        Delivery.objects.filter(id__in=ids, state=Delivery.State.FAILED).update(
            state=Delivery.State.PENDING, next_attempt_at=now, enqueued_at=now, **common
        )
        transaction.on_commit(lambda: enqueue_deliveries(ids, endpoints=wake_endpoints(rows)))
    else:
        Delivery.objects.filter(id__in=ids, state=Delivery.State.FAILED).update(
            state=Delivery.State.HELD, next_attempt_at=None, **common
        )
    TrailEntry.objects.create(
        subscription=live, actor=by, action=TrailEntry.Action.RECOVERED,
        detail=f"{len(ids)} failed deliveries since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        + ("" if live.is_active else ", held until Resume"),
    )
    return len(ids)
