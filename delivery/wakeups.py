"""Waking an endpoint's sender: at most one waiting message per endpoint, and the sweeper behind it.

A sender sends every due delivery of its endpoint (delivery.sender), so one
message per endpoint is enough while a sender is queued or running. An
EndpointWake row says so:
- on commit, the caller creates the row for each endpoint it wrote deliveries
  for, and publishes a message only where it created it;
- the running sender refreshes the row, and deletes it right before its last
  look for due work: a delivery committed before that delete is found by that
  look, one committed after it creates the row again and publishes.

The database is the source of truth, so a lost message (broker restarted
empty, worker killed) only delays: the sweeper (every SWEEP_INTERVAL, from
Celery beat) deletes rows older than a lease (their sender died) and wakes
every endpoint that has due work and no row, unless its breaker is open.
"""

import logging
import uuid
from datetime import timedelta

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from delivery import metrics, slots
from delivery.models import Delivery, EndpointWake

logger = logging.getLogger(__name__)

SEND_TASK = "delivery.tasks.send_endpoint"
SWEEP_INTERVAL = 2.0  # seconds between sweeps (CELERY_BEAT_SCHEDULE in settings says the same)


def sweep_grace() -> float:
    """Return the age after which a wake row means a dead sender or a lost message.

    A running sender refreshes its row each batch and whenever it renews its
    lease, so the row is never older than one lease.
    """
    return slots.lease_seconds()


def endpoint_claim(subscription_id) -> bool:
    """Create the endpoint's wake row; return False if it exists (a sender is queued or running)."""
    try:
        with transaction.atomic():
            EndpointWake.objects.create(subscription_id=subscription_id, since=timezone.now())
    except IntegrityError:
        return False
    return True


def _claim_many(subscription_ids: list) -> list:
    """Create the wake rows that do not exist yet; return the endpoints whose row was created here.

    Two statements whatever the number of endpoints (a caller with 100 subscriptions pays no more).
    """
    if len(subscription_ids) == 1:
        return subscription_ids if endpoint_claim(subscription_ids[0]) else []
    token, now = uuid.uuid4().hex, timezone.now()
    EndpointWake.objects.bulk_create(
        [EndpointWake(subscription_id=s, since=now, token=token) for s in subscription_ids], ignore_conflicts=True)
    return list(EndpointWake.objects.filter(subscription_id__in=subscription_ids, token=token)
                .values_list("subscription_id", flat=True))


def endpoints_wake(subscription_ids) -> int:
    """Publish a send message for each endpoint that has no sender queued or running; return how many.

    A broker that is down loses nothing: the row is removed again, the
    deliveries stay due, and the sweeper wakes the endpoint once it can.
    """
    sent = 0
    for subscription_id in _claim_many(list(dict.fromkeys(subscription_ids))):
        try:
            current_app.send_task(SEND_TASK, args=[str(subscription_id)], retry=False)
            sent += 1
        except Exception:  # noqa: BLE001 - any broker error: the sweeper takes over
            logger.warning("Broker unavailable; endpoint %s left for the sweeper", subscription_id)
            endpoint_release(subscription_id)
    return sent


def endpoint_help(subscription_id) -> None:
    """Publish one more send message for an endpoint whose sender has a slow backlog (whatever the wake row says)."""
    try:
        current_app.send_task(SEND_TASK, args=[str(subscription_id)], retry=False)
    except Exception:  # noqa: BLE001 - the one sender carries on alone
        logger.warning("Broker unavailable; no helper sender for endpoint %s", subscription_id)


def endpoint_hold(subscription_id) -> None:
    """Refresh the endpoint's wake row (creating it if gone): new deliveries publish nothing while it runs."""
    if not EndpointWake.objects.filter(subscription_id=subscription_id).update(since=timezone.now()):
        endpoint_claim(subscription_id)


def endpoint_release(subscription_id) -> None:
    """Delete the endpoint's wake row, right before the sender's last look: later deliveries publish again."""
    EndpointWake.objects.filter(subscription_id=subscription_id).delete()


def endpoints_sweep(*, organisation_id=None, exclude=None) -> int:
    """Wake every endpoint with due, unclaimed work whose message is missing or stale; return how many.

    With organisation_id: only that organisation's endpoints (but `exclude`), and stale rows stay
    (a sender that let go of an organisation's slot wakes the endpoints that found every slot held).
    """
    now = timezone.now()
    if organisation_id is None:
        EndpointWake.objects.filter(since__lt=now - timedelta(seconds=sweep_grace())).delete()
    breaker_open = Q(subscription__endpoint_health__open_until__gt=now) & Q(event__is_test=False)
    due = (
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .exclude(breaker_open)
        .exclude(subscription__endpoint_wake__isnull=False)
    )
    if organisation_id is not None:
        due = due.filter(subscription__organisation_id=organisation_id).exclude(subscription_id=exclude)
    woken = endpoints_wake(list(due.values_list("subscription_id", flat=True).distinct()[:1000]))
    if organisation_id is None:
        metrics.sweeper_requeued(count=woken)
    return woken
