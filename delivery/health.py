"""Endpoint health: the per-endpoint concurrency cap, the circuit breaker and automatic pause.

A failing endpoint must never slow the healthy ones. Two rules keep it apart:
- the cap: at most WEBHOOKS_ENDPOINT_CONCURRENCY requests in flight per
  endpoint (live leases are counted), so a hanging endpoint ties up only that
  many worker threads;
- the breaker: after WEBHOOKS_BREAKER_THRESHOLD consecutive failed attempts
  nothing is sent for a cool-down; then one probe request goes, and its answer
  closes the breaker or opens it again for twice as long.
A delivery held back by either is deferred (a new due time), not sent and not
counted as an attempt. A test delivery passes an open breaker: it is the
operator's own probe.
"""

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from delivery.models import Attempt, Delivery, EndpointHealth
from subscriptions.models import Subscription

logger = logging.getLogger(__name__)

GONE_REASON = "The endpoint answered 410 Gone. Resume to deliver what was held."


def lease_seconds() -> float:
    return settings.WEBHOOKS_TIMEOUT + settings.WEBHOOKS_LEASE_MARGIN


def _jittered(seconds: float) -> timedelta:
    # Spread deferred deliveries so they do not come back in one burst.
    return timedelta(seconds=seconds * random.uniform(0.75, 1.25))


def endpoint_lock(*, subscription: Subscription) -> EndpointHealth:
    """Return the endpoint's health row, locked until the end of the transaction (created if missing)."""
    health = EndpointHealth.objects.select_for_update().filter(subscription=subscription).first()
    if health is None:
        EndpointHealth.objects.bulk_create(
            [EndpointHealth(subscription=subscription, url=subscription.url)], ignore_conflicts=True
        )
        health = EndpointHealth.objects.select_for_update().get(subscription=subscription)
    if health.url != subscription.url:
        # The URL was edited: the old address's failures say nothing about the new one.
        _reset(health, url=subscription.url)
    return health


def _reset(health: EndpointHealth, **extra) -> None:
    fields = dict(consecutive_failures=0, failing_since=None, open_until=None, probe_until=None, **extra)
    for name, value in fields.items():
        setattr(health, name, value)
    health.save(update_fields=list(fields))


def endpoint_admit(*, health: EndpointHealth, now: datetime, is_test: bool = False) -> datetime | None:
    """Return None if one more request may go to this endpoint now, or when to try again.

    Call with the health row locked (endpoint_lock). Admitting a half-open
    endpoint's probe records it, so only one probe is in flight at a time.
    """
    cap = settings.WEBHOOKS_ENDPOINT_CONCURRENCY
    if cap and _in_flight(health.subscription_id, now) >= cap:
        return now + _jittered(settings.WEBHOOKS_DEFER_SECONDS)
    if health.open_until is None or is_test:
        return None
    if now < health.open_until:
        return health.open_until + _jittered(settings.WEBHOOKS_DEFER_SECONDS)
    if health.probe_until is not None and health.probe_until > now:
        # Wait for the probe's answer (at most its lease), not in short hops:
        # an endpoint with thousands of due deliveries would churn through them.
        return health.probe_until + _jittered(settings.WEBHOOKS_DEFER_SECONDS)
    health.probe_until = now + timedelta(seconds=lease_seconds())
    health.save(update_fields=["probe_until"])
    return None


def _in_flight(subscription_id, now: datetime) -> int:
    return Delivery.objects.filter(subscription_id=subscription_id, locked_until__gt=now).count()


_RECOVERED = """
UPDATE delivery_endpointhealth SET consecutive_failures = 0, failing_since = NULL, open_until = NULL, probe_until = NULL
WHERE subscription_id = %s AND (consecutive_failures > 0 OR open_until IS NOT NULL OR probe_until IS NOT NULL)
"""


def endpoint_record(*, subscription: Subscription, succeeded: bool, status_code: int | None,
                    now: datetime) -> str | None:
    """Update the endpoint's record after an attempt; return why to pause the subscription, or None.

    Run inside the attempt's transaction; pause (endpoint_pause) only after it
    commits, so the pause's bulk update never waits on locks this one holds.
    """
    if succeeded:
        # One statement (plain SQL: it runs after every batch), and it changes nothing on a healthy endpoint.
        with connection.cursor() as cursor:
            cursor.execute(_RECOVERED, [subscription.pk])
        return None
    health = endpoint_lock(subscription=subscription)
    health.consecutive_failures += 1
    health.failing_since = health.failing_since or now
    health.probe_until = None
    threshold = settings.WEBHOOKS_BREAKER_THRESHOLD
    if threshold and health.consecutive_failures >= threshold:
        health.open_until = now + timedelta(seconds=breaker_cooldown(health.consecutive_failures - threshold))
    health.save(update_fields=["consecutive_failures", "failing_since", "probe_until", "open_until"])
    if status_code == 410:
        return GONE_REASON
    return _failing_too_long(health, subscription=subscription, now=now)


def breaker_cooldown(failed_probes: int) -> float:
    """Return the cool-down in seconds after this many failed probes (doubling, capped)."""
    base = settings.WEBHOOKS_BREAKER_COOLDOWN
    return min(base * 2 ** min(failed_probes, 20), max(base, settings.WEBHOOKS_BREAKER_MAX_COOLDOWN))


def _failing_too_long(health: EndpointHealth, *, subscription: Subscription, now: datetime) -> str | None:
    period = timedelta(days=settings.WEBHOOKS_AUTO_PAUSE_AFTER)
    if health.failing_since is None or now - health.failing_since < period:
        return None
    # Every attempt since failing_since failed (a success would have cleared it).
    failed = (
        Attempt.objects.filter(delivery__subscription=subscription, started_at__gte=health.failing_since)
        .values("delivery_id").distinct().count()
    )
    if failed < settings.WEBHOOKS_AUTO_PAUSE_MIN_FAILURES:
        return None
    days = (now - health.failing_since).total_seconds() / 86400
    return (f"Every attempt failed for {days:.1f} days ({failed} deliveries). "
            "Fix the endpoint, then resume to deliver what was held.")


def endpoint_pause(*, subscription: Subscription, reason: str) -> bool:
    """Pause the subscription automatically with this reason; return False if it was not active."""
    from subscriptions.services import subscription_pause  # subscriptions.services imports delivery

    with transaction.atomic():
        locked = Subscription.objects.select_for_update().filter(
            id=subscription.id, state=Subscription.State.ACTIVE, deleted_at__isnull=True
        ).first()
        if locked is None:
            return False
        subscription_pause(subscription=locked, reason=reason, automatic=True)
    logger.warning("Subscription %s paused automatically: %s", subscription.public_id, reason)
    return True


def endpoint_reset(*, subscription: Subscription) -> None:
    """Forget the endpoint's failures and close its breaker (on resume: a fresh start)."""
    EndpointHealth.objects.filter(subscription=subscription).update(
        consecutive_failures=0, failing_since=None, open_until=None, probe_until=None
    )
