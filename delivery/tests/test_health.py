"""Endpoint isolation: the per-endpoint cap, the circuit breaker, automatic pause (clock faked)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from conftest import make_subscription
from delivery import health
from delivery.models import Delivery, EndpointHealth
from delivery.services import delivery_attempt
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry
from subscriptions.services import subscription_resume, subscription_send_test, subscription_update

pytestmark = pytest.mark.django_db

T0 = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)  # later than any real "now" of these tests


@pytest.fixture
def breaker(settings):
    settings.WEBHOOKS_BREAKER_THRESHOLD = 3
    settings.WEBHOOKS_BREAKER_COOLDOWN = 60
    settings.WEBHOOKS_BREAKER_MAX_COOLDOWN = 600
    settings.WEBHOOKS_RETRY_SCHEDULE = [1, 1, 1, 1, 1, 1, 1, 1]
    return settings


def _record(org, n=1):
    return [record_activity(organisation=org, activity_type="lot.created", data={"n": i}) for i in range(n)]


def _attempt_all_due(subscription):
    """Run the worker's step for every due delivery of the subscription, oldest first; return attempts."""
    ids = (
        Delivery.objects.filter(subscription=subscription, state=Delivery.State.PENDING,
                                next_attempt_at__lte=timezone.now())
        .order_by("created_at").values_list("id", flat=True)
    )
    return [a for a in (delivery_attempt(delivery_id=i) for i in list(ids)) if a is not None]


# --- circuit breaker -----------------------------------------------------------------

def test_breaker_opens_after_consecutive_failures_and_defers_instead_of_sending(org, receiver, breaker):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 503
    _record(org, 5)

    attempts = _attempt_all_due(subscription)

    assert len(attempts) == 3 and len(receiver.received) == 3
    state = EndpointHealth.objects.get(subscription=subscription)
    assert state.consecutive_failures == 3 and state.open_until is not None
    held_back = Delivery.objects.filter(subscription=subscription, attempt_count=0)
    assert held_back.count() == 2
    for delivery in held_back:
        # Deferred to the end of the cool-down, without using up an attempt.
        assert delivery.state == Delivery.State.PENDING and delivery.next_attempt_at >= state.open_until
        assert delivery.enqueued_at is None  # the sweeper sends it when due


def test_after_the_cool_down_one_probe_goes_and_its_success_closes_the_breaker(org, receiver, breaker):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.extend([503, 503, 503])
    _record(org, 5)
    with time_machine.travel(T0, tick=False):
        _attempt_all_due(subscription)
    assert len(receiver.received) == 3

    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        row = health.endpoint_lock(subscription=subscription)
        now = timezone.now()
        assert health.endpoint_admit(health=row, now=now) is None  # the probe
        # A second one waits for the probe's answer (at most the probe's lease).
        assert health.endpoint_admit(health=row, now=now) >= row.probe_until > now
        EndpointHealth.objects.filter(subscription=subscription).update(probe_until=None)

    with time_machine.travel(T0 + timedelta(seconds=120), tick=False):
        _attempt_all_due(subscription)  # the probe succeeds, the rest follow
    assert len(receiver.received) == 3 + 5
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.SUCCEEDED}
    state = EndpointHealth.objects.get(subscription=subscription)
    assert state.consecutive_failures == 0 and state.open_until is None and state.failing_since is None


def test_a_failed_probe_opens_the_breaker_again_for_twice_as_long(org, receiver, breaker):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 503
    _record(org, 6)
    with time_machine.travel(T0, tick=False):
        _attempt_all_due(subscription)
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        _attempt_all_due(subscription)  # only the probe goes, and fails
        assert len(receiver.received) == 4
        state = EndpointHealth.objects.get(subscription=subscription)
        assert state.open_until == timezone.now() + timedelta(seconds=120)
    assert [health.breaker_cooldown(n) for n in (0, 1, 2, 3, 4, 10)] == [60, 120, 240, 480, 600, 600]


def test_a_test_delivery_passes_an_open_breaker(org, receiver, breaker):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.extend([503, 503, 503])
    _record(org, 3)
    _attempt_all_due(subscription)
    assert EndpointHealth.objects.get(subscription=subscription).open_until is not None

    event = subscription_send_test(subscription=subscription, activity_type="lot.created")
    delivery_attempt(delivery_id=Delivery.objects.get(event=event).id)

    assert receiver.received[-1].headers["webhook-id"] == event.webhook_id
    assert EndpointHealth.objects.get(subscription=subscription).open_until is None  # and it closed it


def test_a_new_url_starts_with_a_clean_record(org, receiver, breaker):
    subscription, _ = make_subscription(org, url="https://127.0.0.1:1/old")
    _record(org, 3)
    _attempt_all_due(subscription)  # connection refused, three times
    assert EndpointHealth.objects.get(subscription=subscription).open_until is not None

    subscription_update(subscription=subscription, url=receiver.url, activity_types=["lot.created"])
    (event,) = _record(org)
    delivery_attempt(delivery_id=Delivery.objects.get(event=event).id)

    assert [r.headers["webhook-id"] for r in receiver.received] == [event.webhook_id]


# --- per-endpoint concurrency cap ----------------------------------------------------

def test_a_delivery_over_the_endpoints_cap_is_deferred_not_sent(org, receiver, settings):
    settings.WEBHOOKS_ENDPOINT_CONCURRENCY = 2
    busy, _ = make_subscription(org, url=receiver.url)
    other, _ = make_subscription(org, url=receiver.url + "/other")
    in_flight = _record(org, 3)
    # Two requests to `busy` are in flight (live leases held by other workers).
    leased = Delivery.objects.filter(subscription=busy, event__in=in_flight[:2])
    leased.update(locked_until=timezone.now() + timedelta(seconds=30))

    third = Delivery.objects.get(subscription=busy, event=in_flight[2])
    assert delivery_attempt(delivery_id=third.id) is None
    third.refresh_from_db()
    assert third.attempt_count == 0 and third.next_attempt_at > timezone.now()

    # Another endpoint of the same organisation is not held back.
    assert delivery_attempt(delivery_id=Delivery.objects.get(subscription=other, event=in_flight[2]).id)
    assert [r.path for r in receiver.received] == ["/hooks/other"]

    leased.update(locked_until=None)  # those two requests finished
    Delivery.objects.filter(id=third.id).update(next_attempt_at=timezone.now())
    assert delivery_attempt(delivery_id=third.id).status_code == 200


# --- automatic pause ---------------------------------------------------------------------

def test_failing_every_attempt_for_five_days_pauses_the_subscription(org, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [3600] * 200
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    with time_machine.travel(T0, tick=False):
        _record(org, 5)
        _attempt_all_due(subscription)
    assert len(receiver.received) == 5

    # Four days on, still failing: not yet.
    with time_machine.travel(T0 + timedelta(days=4), tick=False):
        _attempt_all_due(subscription)
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE

    with time_machine.travel(T0 + timedelta(days=5, minutes=1), tick=False):
        _attempt_all_due(subscription)
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.PAUSED
    assert subscription.paused_reason.startswith("Every attempt failed for 5.0 days (5 deliveries).")
    entry = TrailEntry.objects.filter(subscription=subscription).first()
    assert entry.action == TrailEntry.Action.AUTO_PAUSED and entry.detail == subscription.paused_reason
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.HELD}

    # Resume: the endpoint is fixed, what was held is delivered, and old failures are forgotten.
    receiver.default = 200
    sent_before = len(receiver.received)
    assert subscription_resume(subscription=subscription) == 5
    _attempt_all_due(subscription)
    assert len(receiver.received) == sent_before + 5
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.SUCCEEDED}


def test_fewer_than_a_handful_of_failed_deliveries_never_pause(org, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [3600] * 200
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    with time_machine.travel(T0, tick=False):
        _record(org, 4)  # bad input for the rule: only four deliveries ever failed
        _attempt_all_due(subscription)
    with time_machine.travel(T0 + timedelta(days=6), tick=False):
        _attempt_all_due(subscription)
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE


def test_one_success_in_the_period_restarts_the_clock(org, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [3600] * 200
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    with time_machine.travel(T0, tick=False):
        _record(org, 5)
        _attempt_all_due(subscription)
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        receiver.script.append(200)
        _attempt_all_due(subscription)  # one of the five gets through
    with time_machine.travel(T0 + timedelta(days=5, minutes=1), tick=False):
        _attempt_all_due(subscription)
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE
    state = EndpointHealth.objects.get(subscription=subscription)
    assert state.failing_since == T0 + timedelta(days=3)  # the first failure after the success
