"""Endpoint health: the circuit breaker and the rule for automatic pause.

A failing endpoint must never slow the healthy ones. After
BREAKER_THRESHOLD consecutive failed attempts its breaker opens: nothing
but a test send goes to it for a cool-down; then one probe request goes, and
its answer closes the breaker or opens it again for twice as long (up to
BREAKER_MAX_COOLDOWN). Deliveries waiting behind an open breaker stay due and
use up no retry. After AUTO_PAUSE_AFTER of nothing but failures (over at least
AUTO_PAUSE_MIN_FAILURES deliveries), or at once on 410 Gone, the subscription
is paused automatically.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from delivery.models import Attempt, EndpointHealth
from subscriptions.models import Subscription

BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN = 60.0  # seconds
BREAKER_MAX_COOLDOWN = 3600.0
AUTO_PAUSE_AFTER = timedelta(days=5)
AUTO_PAUSE_MIN_FAILURES = 5
GONE_REASON = "The endpoint answered 410 Gone. Resume to deliver what was held."

_CLEAN = {"consecutive_failures": 0, "failing_since": None, "open_until": None, "probe_until": None}


def endpoint_health(*, subscription: Subscription) -> EndpointHealth | None:
    """Return the endpoint's record for its current URL, or None when it has none (a clean record).

    A record about an earlier URL is reset: the old address's failures say nothing of the new one.
    """
    health = EndpointHealth.objects.filter(subscription=subscription).first()
    if health is not None and health.url != subscription.url:
        EndpointHealth.objects.filter(pk=health.pk).update(url=subscription.url, **_CLEAN)
        return None
    return health


def probe_take(*, subscription: Subscription, until: datetime) -> bool:
    """Take the one probe of a half-open breaker (cool-down over, no probe in flight); return True if taken."""
    now = timezone.now()
    return bool(
        EndpointHealth.objects.filter(subscription=subscription, open_until__lte=now)
        .filter(Q(probe_until__isnull=True) | Q(probe_until__lt=now))
        .update(probe_until=until)
    )


def probe_drop(*, subscription: Subscription) -> None:
    """Give the probe back unused (nothing was due to probe with)."""
    EndpointHealth.objects.filter(subscription=subscription).update(probe_until=None)


def breaker_cooldown(failed_probes: int) -> float:
    """Return the cool-down in seconds after this many failed probes (doubling, capped)."""
    return min(BREAKER_COOLDOWN * 2 ** min(failed_probes, 20), max(BREAKER_COOLDOWN, BREAKER_MAX_COOLDOWN))


@dataclass(frozen=True)
class Verdict:
    """What an attempt's outcome means for the endpoint."""

    pause_reason: str | None = None  # pause the subscription, for this reason
    breaker_opened: bool = False  # the breaker opened (or re-opened after a failed probe) just now


def endpoint_record(*, subscription: Subscription, succeeded: bool, status_code: int | None) -> Verdict:
    """Update the endpoint's record after an attempt; return what follows from it.

    Run in the attempt's transaction; the caller pauses (and alerts) after it commits.
    """
    now = timezone.now()
    if succeeded:
        # Changes nothing on a healthy endpoint.
        EndpointHealth.objects.filter(subscription=subscription).exclude(**_CLEAN).update(**_CLEAN)
        return Verdict()
    EndpointHealth.objects.bulk_create([EndpointHealth(subscription=subscription, url=subscription.url)],
                                       ignore_conflicts=True)
    health = EndpointHealth.objects.select_for_update().get(subscription=subscription)
    health.consecutive_failures += 1
    health.failing_since = health.failing_since or now
    health.probe_until = None
    opened = health.consecutive_failures >= BREAKER_THRESHOLD
    if opened:
        health.open_until = now + timedelta(seconds=breaker_cooldown(health.consecutive_failures - BREAKER_THRESHOLD))
    health.save(update_fields=["consecutive_failures", "failing_since", "probe_until", "open_until"])
    reason = GONE_REASON if status_code == 410 else _failing_too_long(health, subscription=subscription, now=now)
    return Verdict(pause_reason=reason, breaker_opened=opened)


def _failing_too_long(health: EndpointHealth, *, subscription: Subscription, now: datetime) -> str | None:
    if health.failing_since is None or now - health.failing_since < AUTO_PAUSE_AFTER:
        return None
    # Every attempt since failing_since failed (a success would have cleared it).
    failed = (
        Attempt.objects.filter(delivery__subscription=subscription, started_at__gte=health.failing_since)
        .values("delivery_id").distinct().count()
    )
    if failed < AUTO_PAUSE_MIN_FAILURES:
        return None
    days = (now - health.failing_since).total_seconds() / 86400
    return (f"Every attempt failed for {days:.1f} days ({failed} deliveries). "
            "Fix the endpoint, then resume to deliver what was held.")


def endpoint_reset(*, subscription_id) -> None:
    """Forget the endpoint's failures and close its breaker (on Resume: a fresh start)."""
    EndpointHealth.objects.filter(subscription_id=subscription_id).update(**_CLEAN)
