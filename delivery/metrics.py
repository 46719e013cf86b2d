"""Prometheus metrics of delivery: counters recorded where work happens, gauges read at scrape time.

Counters and the latency histogram are recorded by whichever process does the
work (web for events, workers for attempts and sweeps) in prometheus-client's
multiprocess mode: each process writes its values to files under
PROMETHEUS_MULTIPROC_DIR and `/metrics` adds up the files of every process on
its machine (docs/DECISIONS.md). The gauges are not kept by any process: the
DatabaseCollector counts the database when Prometheus scrapes, so every web
process answers the same numbers and no worker has to be alive to report them.

Labels are bounded: an outcome, an error kind, a role. No endpoint, organisation
or URL label (their number grows with customers).
"""

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from delivery.models import Attempt, Delivery, EndpointHealth
from subscriptions.models import Subscription

# What an attempt came to, by its delivery's state after it: succeeded, will be retried, failed for
# good, held (410 Gone, or paused while the request was in flight) or cancelled (deleted meanwhile).
OUTCOMES = ("succeeded", "retrying", "failed", "held", "cancelled")
# Why an attempt failed: the transport's error kinds, or the class of an HTTP status that is not 2xx.
ERROR_KINDS = ("none", *Attempt.ErrorKind.values, "http_3xx", "http_4xx", "http_5xx", "http_other")

ATTEMPTS = Counter(
    "webhooks_attempts", "HTTP attempts made, by outcome and error kind.", ["outcome", "error_kind"]
)
ATTEMPT_DURATION = Histogram(
    "webhooks_attempt_duration_seconds", "Duration of one HTTP attempt, whole exchange.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EVENTS = Counter("webhooks_events_recorded", "Events recorded (counted when their transaction commits).")
SWEEPER_REQUEUED = Counter(
    "webhooks_sweeper_requeued",
    "Endpoints woken by the sweeper: retries and breaker probes that came due, and wake-ups that were lost.",
)


def error_kind_for(*, status_code: int | None, error_kind: str) -> str:
    """Return the bounded error-kind label of one attempt ("none" for a 2xx answer)."""
    if error_kind:
        return error_kind if error_kind in ERROR_KINDS else Attempt.ErrorKind.OTHER
    if status_code is None or 200 <= status_code < 300:
        return "none"
    return f"http_{status_code // 100}xx" if 300 <= status_code < 600 else "http_other"


def attempt_recorded(*, outcome: str, error_kind: str, duration_ms: int) -> None:
    """Count one HTTP attempt; unknown label values are counted as "other", never as new series."""
    if outcome not in OUTCOMES:
        outcome = "other"
    if error_kind not in ERROR_KINDS:
        error_kind = Attempt.ErrorKind.OTHER
    ATTEMPTS.labels(outcome=outcome, error_kind=error_kind).inc()
    ATTEMPT_DURATION.observe(max(duration_ms, 0) / 1000)


def events_recorded(*, count: int) -> None:
    """Count events recorded."""
    if count > 0:
        EVENTS.inc(count)


def sweeper_requeued(*, count: int) -> None:
    """Count endpoints the sweeper woke."""
    if count > 0:
        SWEEPER_REQUEUED.inc(count)


class DatabaseCollector:
    """The gauges, counted in the database at scrape time (four indexed or small queries)."""

    def collect(self):
        now = timezone.now()
        # One read of the partial index delivery_due (pending rows by next_attempt_at).
        due = Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now).aggregate(
            count=Count("id"), oldest=Min("next_attempt_at")
        )
        oldest = due["oldest"]
        yield GaugeMetricFamily("webhooks_deliveries_due", "Pending deliveries whose next attempt is due now.",
                                value=due["count"])
        yield GaugeMetricFamily(
            "webhooks_oldest_due_delivery_age_seconds",
            "How long the longest-waiting due delivery has been due (0 when none is).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily("webhooks_breakers_open", "Endpoints whose circuit breaker is open.",
                                value=EndpointHealth.objects.filter(open_until__isnull=False).count())
        yield GaugeMetricFamily(
            "webhooks_subscriptions_paused", "Subscriptions paused (by a user or automatically).",
            value=Subscription.objects.filter(state=Subscription.State.PAUSED, deleted_at__isnull=True).count(),
        )


def metrics_registry(*, include_database: bool = True) -> CollectorRegistry:
    """Return a registry of this machine's process counters and, unless told not to, the database gauges."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    if include_database:
        registry.register(DatabaseCollector())
    return registry
