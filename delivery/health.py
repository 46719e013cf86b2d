"""Endpoint health: the circuit breaker and the rule for automatic pause.

A failing endpoint must never slow the healthy ones. After
BREAKER_THRESHOLD consecutive failed attempts its breaker opens: nothing
but a test send goes to it for a cool-down; then one probe request goes, and
its answer closes the breaker or opens it again for twice as long (up to
BREAKER_MAX_COOLDOWN). Deliveries waiting behind an open breaker stay due and
use up no retry. After AUTO_PAUSE_AFTER of nothing but failures (over at least
AUTO_PAUSE_MIN_FAILURES deliveries), or at once on 410 Gone, the subscription
is paused automatically.

`gate()` is the one answer to "what may go to this endpoint now", from its
record and the time: the sender asks it before each claim, the pages say it,
and `gate_lets_deliveries()` is the same rule as a query expression for the
sweeper and the sender's last look (a test checks that the two agree).
"""

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from delivery.models import Attempt, EndpointHealth

BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN = 60.0  # seconds
BREAKER_MAX_COOLDOWN = 3600.0
AUTO_PAUSE_AFTER = timedelta(days=5)
AUTO_PAUSE_MIN_FAILURES = 5
GONE_REASON = "The endpoint answered 410 Gone. Resume to deliver what was held."

_CLEAN = {"consecutive_failures": 0, "failing_since": None, "open_until": None, "probe_until": None,
          "last_error": "", "last_failed_at": None}


class Gate(enum.Enum):
    """What may go to an endpoint now."""

    ALL = "all"  # no breaker open: every due delivery
    PROBE = "probe"  # the cool-down is over and no probe is in flight: one request, to see if it answers
    TESTS_ONLY = "tests_only"  # the breaker is open or its probe is in flight: test sends only


def gate(record, now: datetime) -> Gate:
    """Return what may go to the endpoint at `now`, from its breaker record (None: a clean record).

    `record` is anything with `open_until` and `probe_until` (an EndpointHealth, a snapshots.Record).
    """
    if record is None or record.open_until is None:
        return Gate.ALL
    if record.open_until <= now and (record.probe_until is None or record.probe_until < now):
        return Gate.PROBE
    return Gate.TESTS_ONLY


def gate_lets_deliveries(prefix: str, now) -> Q:
    """Return the filter of rows whose endpoint's gate is ALL or PROBE at `now` (gate() as a query expression).

    `prefix` leads from the queried model to EndpointHealth ("subscription__endpoint_health__" from a
    Delivery); an endpoint without a record matches.
    """
    return (Q(**{f"{prefix}open_until__isnull": True})
            | (Q(**{f"{prefix}open_until__lte": now})
               & (Q(**{f"{prefix}probe_until__isnull": True}) | Q(**{f"{prefix}probe_until__lt": now}))))


def probe_take(*, subscription_id, until: datetime) -> bool:
    """Take the one probe of a half-open breaker (cool-down over, no probe in flight); return True if taken."""
    now = timezone.now()
    return bool(
        EndpointHealth.objects.filter(subscription_id=subscription_id, open_until__lte=now)
        .filter(Q(probe_until__isnull=True) | Q(probe_until__lt=now))
        .update(probe_until=until)
    )


def breaker_probe_now(*, subscription_id) -> bool:
    """End an open breaker's cool-down now (Try now), unless a probe is in flight; return True if it was cut short.

    The gate then says PROBE: the next claim takes one delivery as the probe, exactly as after a cool-down.
    """
    now = timezone.now()
    return bool(
        EndpointHealth.objects.filter(subscription_id=subscription_id, open_until__gt=now)
        .filter(Q(probe_until__isnull=True) | Q(probe_until__lt=now))
        .update(open_until=now)
    )


def probe_drop(*, subscription_id) -> None:
    """Give the probe back unused (nothing was due to probe with)."""
    EndpointHealth.objects.filter(subscription_id=subscription_id).update(probe_until=None)


def breaker_cooldown(failed_probes: int) -> float:
    """Return the cool-down in seconds after this many failed probes (doubling, capped)."""
    return min(BREAKER_COOLDOWN * 2 ** min(failed_probes, 20), max(BREAKER_COOLDOWN, BREAKER_MAX_COOLDOWN))


@dataclass(frozen=True)
class Verdict:
    """What an attempt's outcome means for the endpoint."""

    pause_reason: str | None = None  # pause the subscription, for this reason
    breaker_opened: bool = False  # the breaker opened (or re-opened after a failed probe) just now


def failure_text(attempt: Attempt) -> str:
    """Return how a failed attempt is named on the pages: "HTTP 503", or its network error."""
    if attempt.status_code is not None:
        return f"HTTP {attempt.status_code}"
    return attempt.error_message or attempt.get_error_kind_display()


def endpoint_failed(*, subscription_id, url: str, attempt: Attempt) -> Verdict:
    """Count a failed attempt in the endpoint's record (opening the breaker at the threshold) and keep it as the
    last failure; return what follows.

    Run in the attempt's transaction; the caller pauses (and alerts) after it commits.
    A record about an earlier URL starts again from zero.
    """
    now = timezone.now()
    EndpointHealth.objects.bulk_create([EndpointHealth(subscription_id=subscription_id, url=url)],
                                       ignore_conflicts=True)
    health = EndpointHealth.objects.select_for_update().get(subscription_id=subscription_id)
    if health.url != url:
        health.url, health.consecutive_failures, health.failing_since, health.open_until = url, 0, None, None
    health.consecutive_failures += 1
    health.failing_since = health.failing_since or now
    health.probe_until = None
    health.last_error, health.last_failed_at = failure_text(attempt), attempt.started_at
    opened = health.consecutive_failures >= BREAKER_THRESHOLD
    if opened:
        health.open_until = now + timedelta(seconds=breaker_cooldown(health.consecutive_failures - BREAKER_THRESHOLD))
    health.save(update_fields=["url", "consecutive_failures", "failing_since", "probe_until", "open_until",
                               "last_error", "last_failed_at"])
    reason = (GONE_REASON if attempt.status_code == 410
              else _failing_too_long(health, subscription_id=subscription_id, now=now))
    return Verdict(pause_reason=reason, breaker_opened=opened)


def _failing_too_long(health: EndpointHealth, *, subscription_id, now: datetime) -> str | None:
    if health.failing_since is None or now - health.failing_since < AUTO_PAUSE_AFTER:
        return None
    # Every attempt since failing_since failed (a success would have cleared it).
    failed = (
        Attempt.objects.filter(delivery__subscription_id=subscription_id, started_at__gte=health.failing_since)
        .values("delivery_id").distinct().count()
    )
    if failed < AUTO_PAUSE_MIN_FAILURES:
        return None
    days = (now - health.failing_since).total_seconds() / 86400
    return (f"Every attempt failed for {days:.1f} days ({failed} deliveries). "
            "Fix the endpoint, then resume to deliver what was held.")


def endpoint_clear(*, subscription_id) -> None:
    """Forget the endpoint's failures after a success (the sender calls it only when its record was not clean)."""
    EndpointHealth.objects.filter(subscription_id=subscription_id).exclude(**_CLEAN).update(**_CLEAN)


def endpoint_reset(*, subscription_id, url: str | None = None) -> None:
    """Forget the endpoint's failures and close its breaker (on Resume, or for a new URL: a fresh start)."""
    fields = dict(_CLEAN, **({"url": url} if url is not None else {}))
    EndpointHealth.objects.filter(subscription_id=subscription_id).update(**fields)
