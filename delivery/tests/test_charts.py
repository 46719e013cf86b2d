"""An endpoint's charts: attempts per hour by outcome and exact p50/p95 per hour, on either store."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conftest import make_subscription
from delivery import charts as charts_module
from delivery import states, tasks
from delivery.attempt_hours import attempt_hours_rebuild
from delivery.charts import chart_range, endpoint_charts, endpoint_hours
from delivery.models import Attempt, AttemptHour, Delivery, HourSummary
from delivery.tests.test_health_view import attempt, deliver
from delivery.transport import Response
from subscriptions.activity import record_activity

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 10, 20, tzinfo=UTC)  # the current hour is 10:00-11:00


def test_attempts_are_counted_by_hour_and_outcome_in_the_range_only(org):
    subscription, _ = make_subscription(org)
    other, _ = make_subscription(org, url="https://other.example.com/in")
    d = deliver(subscription, attempts=9, created_at=NOW - timedelta(hours=3))
    at = datetime(2026, 11, 30, 8, 5, tzinfo=UTC)
    for code in (200, 204, 503, None):
        attempt(d, at=at, status_code=code, error_kind="" if code else "timeout")
    attempt(d, at=NOW, status_code=200)  # the current hour
    attempt(d, at=NOW - timedelta(hours=25), status_code=200)  # before the 24 h range
    attempt(deliver(other, attempts=1), at=at, status_code=500)  # another endpoint's

    hours = endpoint_hours(subscription=subscription, range_key="24h", now=NOW)
    assert len(hours) == 24
    assert hours[-1].start == datetime(2026, 11, 30, 10, tzinfo=UTC) and hours[0].start == datetime(
        2026, 11, 29, 11, tzinfo=UTC)
    by_start = {h.start: h for h in hours}
    eight = by_start[datetime(2026, 11, 30, 8, tzinfo=UTC)]
    assert (eight.succeeded, eight.http_failed, eight.no_answer) == (2, 1, 1)
    assert hours[-1].succeeded == 1
    assert sum(h.total for h in hours) == 5
    week = endpoint_hours(subscription=subscription, range_key="7d", now=NOW)
    assert len(week) == 168 and sum(h.total for h in week) == 6


def test_p50_and_p95_are_the_exact_nearest_rank_per_hour(org):
    subscription, _ = make_subscription(org)
    d = deliver(subscription, attempts=100, created_at=NOW - timedelta(hours=2))
    nine = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    durations = list(range(1000, 0, -10))  # 100 attempts: 10, 20, ... 1000 ms, recorded in reverse
    for i, ms in enumerate(durations):
        attempt(d, at=nine + timedelta(seconds=i), status_code=200, duration_ms=ms)
    attempt(d, at=nine - timedelta(minutes=30), status_code=500, duration_ms=7)  # a lone attempt at 08:30
    hours = {h.start: h for h in endpoint_hours(subscription=subscription, range_key="24h", now=NOW)}
    assert (hours[nine].p50_ms, hours[nine].p95_ms) == (500, 950)
    eight = hours[nine - timedelta(hours=1)]
    assert (eight.p50_ms, eight.p95_ms) == (7, 7)
    latency = endpoint_charts(hours=list(hours.values()), range_key="24h")["figures"][1]
    assert [label for _y, label in latency.y_ticks] == ["0 ms", "500 ms", "1 s"]
    assert "the 95th percentile reached 950 ms" in latency.desc
    assert hours[nine + timedelta(hours=1)].p50_ms is None  # no attempts: no percentile


def test_the_charts_cost_two_queries_whatever_the_number_of_attempts_and_a_read_writes_nothing(
        org, django_assert_num_queries):
    """Summaries, then the roll-up of the hours without one. The periodic task sums up the closed hours (in two
    queries); from then on the roll-up is read for the open hours only."""
    subscription, _ = make_subscription(org)
    d = deliver(subscription, attempts=60, created_at=NOW - timedelta(days=2))
    for i in range(60):
        attempt(d, at=NOW - timedelta(hours=i), status_code=200, duration_ms=i)
    with django_assert_num_queries(2):
        first = endpoint_hours(subscription=subscription, range_key="7d", now=NOW)
    assert not HourSummary.objects.exists()  # a page's read stores nothing
    with django_assert_num_queries(2):
        assert charts_module.closed_hours_summarise(now=NOW) == 59
    # 10:00 is open; 09:00 ended 20 minutes ago, more than SETTLE: summed up with the 58 hours before it.
    assert charts_module.attempt_hours.SETTLE < timedelta(minutes=20)
    assert set(HourSummary.objects.values_list("hour", flat=True)) == {
        datetime(2026, 11, 30, 10, tzinfo=UTC) - timedelta(hours=i) for i in range(1, 60)}
    assert charts_module.closed_hours_summarise(now=NOW) == 0  # each hour once
    with django_assert_num_queries(2):
        again = endpoint_hours(subscription=subscription, range_key="7d", now=NOW)
    assert again == first
    # The roll-up is no longer read for summed-up hours: change one and the charts do not see it.
    AttemptHour.objects.filter(hour=datetime(2026, 11, 30, 5, tzinfo=UTC)).update(succeeded=1000)
    assert endpoint_hours(subscription=subscription, range_key="7d", now=NOW) == first


def test_the_drawing_scales_bars_to_the_busiest_hour_and_describes_itself(org):
    subscription, _ = make_subscription(org)
    d = deliver(subscription, attempts=6, created_at=NOW - timedelta(hours=2))
    for code in (200, 200, 200, 503):
        attempt(d, at=datetime(2026, 11, 30, 9, 1, tzinfo=UTC), status_code=code, duration_ms=120)
    attempt(d, at=datetime(2026, 11, 30, 7, 1, tzinfo=UTC), status_code=200, duration_ms=80)
    charts = endpoint_charts(hours=endpoint_hours(subscription=subscription, range_key="24h", now=NOW),
                             range_key="24h")
    outcomes, latency = charts["figures"]
    heights = {}
    for _x, _y, _w, h, css, _tip in outcomes.bars:
        heights.setdefault(css, []).append(h)
    # The busiest hour (4 attempts) is drawn to the 5-attempt axis top: 3 ok + 1 http stacked.
    assert sorted(heights["ok"])[-1] == pytest.approx(3 * heights["http"][0])
    assert "5 attempts, 4 succeeded, 1 failed with an HTTP status and 0 got no answer" in outcomes.desc
    assert "30 Nov 09:00 UTC, had 4" in outcomes.desc
    assert {tip for *_, tip in outcomes.bars} >= {"30 Nov 2026, 09:00 UTC: 3 succeeded",
                                                 "30 Nov 2026, 09:00 UTC: 1 failed with an HTTP status"}
    assert [label for _y, label in outcomes.y_ticks] == ["0", "2.5", "5"]
    assert "the median attempt took 80 to 120 ms" in latency.desc
    assert [label for _y, label in latency.y_ticks] == ["0 ms", "100 ms", "200 ms"]
    assert {css for *_, css in latency.dots} == {"p50", "p95"}
    assert [h.start.hour for h in charts["rows"]] == [7, 9]


def test_no_attempts_draws_empty_axes_and_says_so(org):
    subscription, _ = make_subscription(org)
    charts = endpoint_charts(hours=endpoint_hours(subscription=subscription, range_key="7d", now=NOW),
                             range_key="7d")
    outcomes, latency = charts["figures"]
    assert outcomes.bars == [] and latency.lines == [] and charts["rows"] == []
    assert "0 attempts" in outcomes.desc and latency.desc == "No attempts in the last 7 days."
    # A label a midnight, but for one too near the right edge to be read whole (Mon 30, at 10:20 the same day).
    assert [label for _x, label in outcomes.x_ticks] == ["Tue 24", "Wed 25", "Thu 26", "Fri 27", "Sat 28", "Sun 29",
                                                         "Mon 30"]
    # The 7 days are drawn wider (1040 units for 168 hours) so a bar is 4.7 units, not 2.3.
    assert outcomes.width == charts_module.WIDE and charts["wide"]
    assert all(x <= charts_module.WIDE - charts_module.RIGHT - charts_module.X_LABEL_ROOM
               for x, _label in outcomes.x_ticks)


def test_an_unknown_range_means_the_last_24_hours():
    assert chart_range("7d") == "7d"
    for bad in (None, "", "30d", "7D", "'><svg>"):
        assert chart_range(bad) == "24h"


def _hours_counted_over_attempts(subscription, *, range_key: str, now: datetime) -> dict:
    """The charts' numbers counted from the attempts themselves: {hour: (ok, http, none, p50, p95)}."""
    span, _ = charts_module.RANGES[range_key]
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    by_hour: dict = {}
    for a in Attempt.objects.filter(delivery__subscription=subscription, started_at__gte=end - span,
                                    started_at__lt=end):
        by_hour.setdefault(a.started_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0), []).append(a)
    expected = {}
    for hour, attempts in by_hour.items():
        durations = sorted(a.duration_ms for a in attempts)
        ok = sum(1 for a in attempts if a.status_code is not None and 200 <= a.status_code < 300)
        none = sum(1 for a in attempts if a.status_code is None)
        expected[hour] = (ok, len(attempts) - ok - none, none,
                          *(durations[math.ceil(len(durations) * p / 100) - 1] for p in (50, 95)))
    return expected


def test_the_charts_from_the_roll_up_equal_a_count_over_the_attempts(org):
    """Attempts recorded as the sender records them (batches, through states.deliveries_record), over 8 days,
    for two endpoints, with repeated durations and every outcome: the roll-up's charts equal the attempts'."""
    subscription, _ = make_subscription(org)
    other, _ = make_subscription(org, url="https://other.example.com/in")
    events = [record_activity(organisation=org, activity_type="lot.created", data={"n": i}) for i in range(25)]
    deliveries = list(Delivery.objects.filter(event__in=events))
    assert len(deliveries) == 50  # each event to both endpoints
    now = timezone.now()
    rng = random.Random(20)
    for number in range(1, 7):
        for sub_id in (subscription.id, other.id):
            sent = []
            for d in (d for d in deliveries if d.subscription_id == sub_id):
                code = rng.choice([200, 200, 204, 410, 500, 503, None])
                ms = rng.choice([3, 12, 12, 40, 250, 10_000])
                response = Response(duration_ms=ms, status_code=code, error_kind="" if code else "timeout",
                                    error_message="" if code else "Timed out")
                at = now - timedelta(hours=rng.randrange(0, 180), minutes=rng.randrange(60))  # some before 7 days
                sent.append(states.Sent(d, Attempt(delivery_id=d.id, number=number, url="https://x.example.com/",
                                                   started_at=at, duration_ms=ms, status_code=code,
                                                   error_kind=response.error_kind,
                                                   error_message=response.error_message), response))
            with transaction.atomic():
                states.deliveries_record(sent=sent)
    assert AttemptHour.objects.count() < Attempt.objects.count()  # repeated (hour, duration) rows were added to

    def charts_equal_the_attempts():
        for sub in (subscription, other):
            for range_key in ("24h", "7d"):
                expected = _hours_counted_over_attempts(sub, range_key=range_key, now=now)
                hours = endpoint_hours(subscription=sub, range_key=range_key, now=now)
                got = {h.start: (h.succeeded, h.http_failed, h.no_answer, h.p50_ms, h.p95_ms)
                       for h in hours if h.total}
                assert got == expected, (sub.url, range_key)
                assert sum(v[0] + v[1] + v[2] for v in got.values()) > 10

    charts_equal_the_attempts()  # from the roll-up
    assert not HourSummary.objects.exists()
    stored = charts_module.closed_hours_summarise(now=now)  # both endpoints' closed hours, in one run
    assert stored == HourSummary.objects.count()
    assert HourSummary.objects.filter(subscription=subscription).count() > 50
    assert HourSummary.objects.filter(subscription=other).count() > 50
    charts_equal_the_attempts()  # from the summaries
    # Attempts recorded late into summed-up hours (a recording delayed past SETTLE), as the sender records
    # them: the summaries of those hours are dropped with the write, and the charts still equal the attempts.
    summed = sorted(HourSummary.objects.filter(subscription=subscription).values_list("hour", flat=True))
    late = [summed[0], summed[len(summed) // 2], summed[-1]]
    d = next(d for d in deliveries if d.subscription_id == subscription.id)
    sent = []
    for i, hour in enumerate(late):
        response = Response(duration_ms=99_999, status_code=200, error_kind="", error_message="")
        sent.append(states.Sent(d, Attempt(delivery_id=d.id, number=7 + i, url="https://x.example.com/",
                                           started_at=hour + timedelta(minutes=59), duration_ms=99_999,
                                           status_code=200, error_kind="", error_message=""), response))
    with transaction.atomic():
        states.deliveries_record(sent=sent)
    assert not HourSummary.objects.filter(subscription=subscription, hour__in=late).exists()
    assert HourSummary.objects.filter(subscription=other, hour__in=late).exists() or not any(
        AttemptHour.objects.filter(subscription=other, hour=h).exists() for h in late)  # only this endpoint's
    charts_equal_the_attempts()  # those hours from the roll-up again
    assert charts_module.closed_hours_summarise(now=now) == 3
    assert HourSummary.objects.filter(subscription=subscription, hour__in=late).count() == 3  # summed up again
    charts_equal_the_attempts()


def test_the_roll_up_recount_equals_what_the_sender_wrote(org):
    """attempt_hours_rebuild (for fixtures and bulk loads) gives the rows the sender's upserts gave."""
    subscription, _ = make_subscription(org)
    d = deliver(subscription, attempts=5, created_at=NOW - timedelta(hours=3))
    for i, (code, ms) in enumerate([(200, 12), (200, 12), (500, 12), (None, 30), (204, 7)]):
        attempt(d, at=NOW - timedelta(hours=i % 2, minutes=i), status_code=code, duration_ms=ms)
    written = sorted(AttemptHour.objects.values_list("hour", "duration_ms", "succeeded", "http_failed", "no_answer"))
    assert attempt_hours_rebuild(subscription_ids=[subscription.id]) == len(written)
    assert sorted(AttemptHour.objects.values_list("hour", "duration_ms", "succeeded", "http_failed",
                                                  "no_answer")) == written


def test_the_closed_hours_are_summed_up_by_a_task_in_the_beat_schedule(org):
    """The periodic task sums up an hour that ended SETTLE ago; not the open hour, not one that ended less than
    SETTLE ago, not one older than the 7 days the charts show."""
    subscription, _ = make_subscription(org)
    d = deliver(subscription, attempts=4, created_at=NOW - timedelta(days=9))
    for at in (NOW, NOW - timedelta(minutes=25), NOW - timedelta(hours=2), NOW - timedelta(days=8)):
        attempt(d, at=at, status_code=200, duration_ms=5)
    entry = settings.CELERY_BEAT_SCHEDULE["summarise-closed-hours"]
    assert entry["task"] == "delivery.tasks.summarise_closed_hours"
    assert entry["schedule"] <= 600
    # At NOW (10:20), 09:00-10:00 ended 20 minutes ago (> SETTLE); with the clock at 10:05 it would not be.
    early = datetime(2026, 11, 30, 10, 5, tzinfo=UTC)
    assert charts_module.closed_hours_summarise(now=early) == 1  # 08:00 only
    assert charts_module.closed_hours_summarise(now=NOW) == 1  # then 09:00
    assert sorted(HourSummary.objects.values_list("hour", flat=True)) == [
        datetime(2026, 11, 30, 8, tzinfo=UTC), datetime(2026, 11, 30, 9, tzinfo=UTC)]
    # The task itself, at the real time: an attempt two hours ago is summed up.
    HourSummary.objects.all().delete()
    AttemptHour.objects.all().delete()
    attempt(d, at=timezone.now() - timedelta(hours=2), status_code=503, duration_ms=7)
    assert tasks.summarise_closed_hours() == 1
    (summary,) = HourSummary.objects.all()
    assert (summary.http_failed, summary.p50_ms) == (1, 7)
