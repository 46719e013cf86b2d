"""The charts' roll-up (AttemptHour): attempts counted per endpoint, UTC hour, whole milliseconds and outcome.

The sender adds its attempts here as it records them, in the same transaction,
with one INSERT ... ON CONFLICT DO UPDATE per batch (states.deliveries_record),
so the 24 h and 7 d charts read at most one row per distinct duration per hour
instead of every attempt (delivery.charts). The counts are the attempts'
exactly: nothing else writes attempts, and `attempt_hours_rebuild` recounts
them from the attempts (for rows written without the sender: fixtures, the
bench's generator).

Closed hours are also summed up once (HourSummary: counts and exact p50/p95), so
the 7 d chart reads at most 168 summaries and the roll-up of the open hours only
(delivery.charts). An hour is summarised by the periodic task
(charts.closed_hours_summarise) once it ended SETTLE ago, never by a page's read; an
attempt recorded into an hour that has ended deletes that hour's summary in the same
transaction, so a summary does not outlive a change to its hour's counts. (One
case is left: a recording more than SETTLE late whose transaction runs while the
task computes that hour's summary could see no summary to delete, and the task
then stores counts without it; the next late attempt, or
attempt_hours_rebuild, puts it right.)
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from delivery.compiled import Compiled, Insert, Param
from delivery.models import Attempt, AttemptHour, HourSummary

OUTCOMES = ("succeeded", "http_failed", "no_answer")
# An hour is summed up (HourSummary) once it ended this long ago: far longer than an attempt takes from
# its start to its recorded batch (the longest exchange, subscriptions.models.TIMEOUT_MAX, plus a batch's
# write), so a summary is almost never written while an attempt of its hour is still on its way. One that
# is (a recording delayed by a database outage) deletes the summary as it is recorded (attempt_hours_add).
SETTLE = timedelta(minutes=10)
_KEY = ("subscription", "hour", "duration_ms")
_FIELDS = {name: AttemptHour._meta.get_field(name) for name in (*_KEY, *OUTCOMES)}
_ADD = Compiled(lambda n: Insert(
    AttemptHour, list(_FIELDS),
    [AttemptHour(**{field.attname: Param(name, field, i) for name, field in _FIELDS.items()}) for i in range(n)],
    conflict=_KEY, add=OUTCOMES))


def hour_of(at: datetime) -> datetime:
    """Return the UTC hour a moment falls in."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def outcome(status_code: int | None) -> str:
    """Return which count an attempt answered with this status (None: no answer) adds to."""
    if status_code is None:
        return "no_answer"
    return "succeeded" if 200 <= status_code < 300 else "http_failed"


def attempt_hours_add(attempts: Iterable[tuple]) -> None:
    """Count attempts, given as (subscription id, started_at, duration_ms, status_code), in one statement.

    Rows are written in key order, so two senders adding to the same hours lock them in the same order.
    """
    counts: dict[tuple, dict[str, int]] = {}
    for subscription_id, started_at, duration_ms, status_code in attempts:
        row = counts.setdefault((subscription_id, hour_of(started_at), duration_ms), dict.fromkeys(OUTCOMES, 0))
        row[outcome(status_code)] += 1
    if not counts:
        return
    keys = sorted(counts, key=lambda k: (str(k[0]), k[1], k[2]))
    values = {"subscription": [k[0] for k in keys], "hour": [k[1] for k in keys],
              "duration_ms": [k[2] for k in keys]}
    for name in OUTCOMES:
        values[name] = [counts[k][name] for k in keys]
    _ADD.run((len(keys),), **values)
    # An attempt recorded into an hour that has ended: that hour's summary, if it has one, no longer holds.
    current = hour_of(timezone.now())
    ended = {(k[0], k[1]) for k in keys if k[1] < current}
    if ended:
        late = Q()
        for subscription_id, hour in sorted(ended, key=lambda k: (str(k[0]), k[1])):
            late |= Q(subscription_id=subscription_id, hour=hour)
        HourSummary.objects.filter(late).delete()


def hour_summaries_save(summaries: list[HourSummary]) -> None:
    """Store closed hours' summaries (delivery.charts computes them); one already stored is kept as it is."""
    HourSummary.objects.bulk_create(summaries, ignore_conflicts=True)


def attempt_hours_rebuild(*, subscription_ids: list | None = None) -> int:
    """Recount the roll-up of these subscriptions (all: None) from their attempts; return how many rows it has.

    For attempts written without the sender (fixtures, a bulk load); the sender keeps it exact as it goes.
    """
    ok = Q(status_code__gte=200, status_code__lt=300)
    attempts = Attempt.objects.all()
    rows = AttemptHour.objects.all()
    summaries = HourSummary.objects.all()
    if subscription_ids is not None:
        attempts = attempts.filter(delivery__subscription_id__in=subscription_ids)
        rows = rows.filter(subscription_id__in=subscription_ids)
        summaries = summaries.filter(subscription_id__in=subscription_ids)
    grouped = (attempts.annotate(hour=TruncHour("started_at", tzinfo=UTC))
               .values("delivery__subscription_id", "hour", "duration_ms").order_by()
               .annotate(ok=Count("id", filter=ok), http=Count("id", filter=Q(status_code__isnull=False) & ~ok),
                         none=Count("id", filter=Q(status_code__isnull=True))))
    with transaction.atomic():
        summaries.delete()
        rows.delete()
        made = AttemptHour.objects.bulk_create(
            [AttemptHour(subscription_id=g["delivery__subscription_id"], hour=hour_of(g["hour"]),
                         duration_ms=g["duration_ms"], succeeded=g["ok"], http_failed=g["http"], no_answer=g["none"])
             for g in grouped], batch_size=1000)
    return len(made)
