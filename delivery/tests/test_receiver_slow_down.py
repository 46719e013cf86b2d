"""A receiver that answers 429 (or 503 with Retry-After) slows its whole endpoint down, then the pace ramps up."""

import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import WORKER_ARGS, make_subscription, wait_until_finished
from delivery import pacing, sender, snapshots
from delivery.health_view import delivery_waits, endpoint_health_view
from delivery.models import Attempt, Delivery, EndpointHealth, EndpointPace
from delivery.tasks import send_endpoint
from delivery.tests.receiver import answer
from delivery.transport import Response
from subscriptions.activity import record_activity


def _record(org, n=1):
    return [record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"LOT-{i}"})
            for i in range(n)]


@pytest.mark.parametrize(("status", "retry_after", "seconds"), [
    (429, "5", 5.0),
    (429, None, pacing.SLOW_DOWN_DEFAULT),  # no Retry-After: the default
    (429, "86400", pacing.SLOW_DOWN_MAX),  # a day: capped at an hour
    (429, "soon", pacing.SLOW_DOWN_DEFAULT),  # bad input: unreadable, so the default
    (503, "7", 7.0),
    (503, None, None),  # a 503 alone is a failure like any other
    (500, "5", None),
])
def test_what_slows_the_endpoint_down_and_for_how_long(status, retry_after, seconds, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [1, 1]  # the retry schedule's cap on Retry-After is not the slow-down's
    response = Response(duration_ms=1, status_code=status,
                        headers={"Retry-After": retry_after} if retry_after is not None else {})
    assert pacing.slow_down_seconds(response) == seconds


def test_after_a_slow_down_the_pace_ramps_from_one_a_second_doubling_up_to_the_limit_or_no_pace():
    def rate(limit, seconds_after):
        sending = snapshots.Sending(
            state="active", deleted_at=None, url="https://x", secret_encrypted="", previous_secret_encrypted="",
            previous_secret_until=None, custom_headers=[], timeout_seconds=None, max_per_second=limit, ordered=False,
            slow_until=timezone.now() - timedelta(seconds=seconds_after))
        return pacing.pace_rate(sending)

    assert rate(None, 0) == pytest.approx(1.0, rel=0.01)
    assert rate(None, 3) == pytest.approx(8.0, rel=0.01)
    assert rate(20, 10) == 20  # the limit, once the ramp passes it
    assert rate(None, 11) is None  # past RAMP_TOP: unpaced again
    assert rate(50, -30) == pytest.approx(1.0)  # before the end of the slow-down (a claim racing it): the slowest


@pytest.mark.django_db
def test_a_429_slows_the_whole_endpoint_is_no_failure_for_the_breaker_and_the_log_says_until_when(
        org, receiver, monkeypatch, client, alice, web_settings):
    subscription, _ = make_subscription(org, url=receiver.url)
    events = _record(org, 3)
    receiver.script = [lambda h: answer(h, 429, headers={"Retry-After": "120"})]
    resumed = []
    monkeypatch.setattr(sender.wakeups, "endpoint_resume_in", lambda sid, seconds: resumed.append(seconds))

    assert send_endpoint(str(subscription.id)) == 1  # one request, then nothing more to that endpoint

    pace = EndpointPace.objects.get(subscription=subscription)
    assert timedelta(seconds=115) < pace.slow_until - timezone.now() <= timedelta(seconds=120)
    assert len(resumed) == 1 and 115 < resumed[0] <= 120  # its next sender is scheduled for then
    assert not EndpointHealth.objects.filter(subscription=subscription, consecutive_failures__gt=0).exists()
    assert send_endpoint(str(subscription.id)) == 0  # a message meanwhile sends nothing
    assert len(receiver.received) == 1
    later = Delivery.objects.filter(event__in=events[1:])
    assert {(d.state, d.attempt_count) for d in later} == {(Delivery.State.PENDING, 0)}  # no retry used
    health = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    waits = delivery_waits(subscription=subscription, deliveries=list(later), health=health)
    assert {w.text for w in waits.values()} == {"Waiting: the receiver asked us to slow down until"}
    assert {w.at for w in waits.values()} == {pace.slow_until}
    client.force_login(alice)
    page = client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "Waiting: the receiver asked us to slow down until" in page


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_a_receiver_answering_429_retry_after_5_for_10_s_gets_nothing_in_each_5_s_then_everything(
        require_services, org, receiver, celery_process):
    """20 events; every request in the first 10 s (from the first) is answered 429 with Retry-After: 5."""
    first_at, said_429, lock = [], [], threading.Lock()

    def busy_then_fine(handler):
        with lock:
            now = time.time()
            first_at.append(now) if not first_at else None
            busy = now - first_at[0] < 10
            if busy:
                said_429.append(now)
        if busy:
            answer(handler, 429, headers={"Retry-After": "5"})
        else:
            answer(handler, 200)

    receiver.default = busy_then_fine
    subscription, _ = make_subscription(org, url=receiver.url)
    events = _record(org, 20)
    celery_process(*WORKER_ARGS, env={"WEBHOOKS_RETRY_SCHEDULE": "1,1,1,1,1,1"})

    wait_until_finished(Delivery.objects.filter(subscription=subscription), timeout=120)

    received = receiver.received
    for at in said_429:  # a request's arrival time is taken before its answer: later ones must come 5 s after
        assert not [r for r in received if at < r.at < at + 5], (
            f"a request within 5 s of a 429 at {at}: 429s at {said_429}, arrivals at {[r.at for r in received]}")
    assert len(said_429) >= 2  # asked at 0 s and at about 5 s, it said 429 both times
    assert {r.headers["webhook-id"] for r in received} == {e.webhook_id for e in events}
    assert Delivery.objects.filter(subscription=subscription, state=Delivery.State.SUCCEEDED).count() == 20
    assert not Attempt.objects.filter(delivery__subscription=subscription, status_code=429,
                                      delivery__state=Delivery.State.FAILED).exists()
