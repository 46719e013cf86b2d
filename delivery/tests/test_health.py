"""Endpoint isolation: the per-endpoint cap, the circuit breaker, automatic pause (clock faked).

Every send goes through the worker's task (delivery.tasks.send_endpoint), in-process,
to the real HTTPS receiver.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from conftest import make_subscription
from delivery import health, slots
from delivery.models import Attempt, Delivery, EndpointHealth
from delivery.tasks import send_endpoint
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry
from subscriptions.services import subscription_resume, subscription_send_test, subscription_update

pytestmark = pytest.mark.django_db

T0 = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)  # later than any real "now" of these tests


@pytest.fixture
def breaker(monkeypatch, settings):
    monkeypatch.setattr(health, "BREAKER_THRESHOLD", 3)
    monkeypatch.setattr(health, "BREAKER_COOLDOWN", 60.0)
    monkeypatch.setattr(health, "BREAKER_MAX_COOLDOWN", 600.0)
    settings.WEBHOOKS_RETRY_SCHEDULE = [1, 1, 1, 1, 1, 1, 1, 1]
    return settings


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """No worker here: the test runs the task itself, so wake-ups (the sweeper's too) publish nothing."""
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)


def _record(org, n=1, activity_type="lot.created"):
    return [record_activity(organisation=org, activity_type=activity_type, data={"n": i}) for i in range(n)]


def _send(subscription) -> int:
    """Run the worker's task for the endpoint, as a wake-up would; return how many attempts it made."""
    return send_endpoint(str(subscription.id))


def _ids(receiver, start=0):
    return [r.headers["webhook-id"] for r in receiver.received[start:]]


# --- circuit breaker -----------------------------------------------------------------

def test_breaker_opens_after_consecutive_failures_and_the_rest_stay_due_without_using_a_retry(
    org, receiver, breaker
):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 503  # bad input: the endpoint fails every request
    events = _record(org, 5)

    assert _send(subscription) == 3

    assert _ids(receiver) == [e.webhook_id for e in events[:3]]
    state = EndpointHealth.objects.get(subscription=subscription)
    assert state.consecutive_failures == 3 and state.open_until > timezone.now()
    # The last failure is kept on the record, for the pages (no page looks for it among the attempts).
    last = Attempt.objects.filter(delivery__subscription=subscription).order_by("-started_at").first()
    assert (state.last_error, state.last_failed_at) == ("HTTP 503", last.started_at)
    waiting = Delivery.objects.filter(subscription=subscription, event__in=events[3:])
    for delivery in waiting:
        # Still due as recorded, unclaimed, no attempt spent: the breaker, not the retry schedule, held it back.
        assert delivery.state == Delivery.State.PENDING and delivery.attempt_count == 0
        assert delivery.next_attempt_at == delivery.created_at and delivery.locked_until is None
    # A second wake-up while the breaker is open sends nothing, and spends nothing.
    Delivery.objects.filter(subscription=subscription).update(next_attempt_at=timezone.now())
    assert _send(subscription) == 0
    assert len(receiver.received) == 3
    assert sorted(Delivery.objects.values_list("attempt_count", flat=True)) == [0, 0, 1, 1, 1]


def test_after_the_cool_down_exactly_one_probe_goes_and_its_success_closes_the_breaker(org, receiver, breaker):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.extend([503, 503, 503])
    events = _record(org, 5)
    with time_machine.travel(T0, tick=False):
        _send(subscription)
    assert len(receiver.received) == 3

    with time_machine.travel(T0 + timedelta(seconds=59), tick=False):
        assert _send(subscription) == 0  # still cooling down

    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        # Another sender took the probe and its request is in flight: no second probe goes.
        assert health.probe_take(subscription_id=subscription.id, until=slots.lease_until()) is True
        assert health.probe_take(subscription_id=subscription.id, until=slots.lease_until()) is False
        assert _send(subscription) == 0
        assert len(receiver.received) == 3
        health.probe_drop(subscription_id=subscription.id)  # that probe gave up without sending

        # This sender takes the probe: it succeeds, the breaker closes, and the rest follow.
        assert _send(subscription) == 5
    assert sorted(_ids(receiver, 3)) == sorted(e.webhook_id for e in events)
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.SUCCEEDED}
    state = EndpointHealth.objects.get(subscription=subscription)
    assert state.consecutive_failures == 0 and state.open_until is None and state.failing_since is None
    assert (state.last_error, state.last_failed_at) == ("", None)  # the success forgot the last failure too


def test_a_failed_probe_opens_the_breaker_again_for_twice_as_long(org, receiver, breaker):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 503
    _record(org, 6)
    with time_machine.travel(T0, tick=False):
        _send(subscription)
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        assert _send(subscription) == 1  # only the probe goes, and fails
        assert len(receiver.received) == 4
        state = EndpointHealth.objects.get(subscription=subscription)
        assert state.open_until == timezone.now() + timedelta(seconds=120)
    with time_machine.travel(T0 + timedelta(seconds=61 + 119), tick=False):
        assert _send(subscription) == 0
    with time_machine.travel(T0 + timedelta(seconds=61 + 121), tick=False):
        assert _send(subscription) == 1  # the next probe, and it fails too
        state = EndpointHealth.objects.get(subscription=subscription)
        assert state.open_until == timezone.now() + timedelta(seconds=240)
    assert len(receiver.received) == 5
    # Only the probes spent attempts: the sixth delivery, never sent, spent none.
    assert Delivery.objects.filter(attempt_count=0).count() == 1
    assert [health.breaker_cooldown(n) for n in (0, 1, 2, 3, 4, 10)] == [60, 120, 240, 480, 600, 600]


def test_a_test_send_passes_an_open_breaker_and_nothing_else_does(org, receiver, breaker):
    breaker.WEBHOOKS_RETRY_SCHEDULE = [600] * 8  # the failed ones are not due again during this test
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 503
    waiting = _record(org, 5)[3:]
    _send(subscription)
    assert EndpointHealth.objects.get(subscription=subscription).open_until is not None

    # The endpoint still fails: the test send goes anyway, the two waiting deliveries do not.
    failing_test = subscription_send_test(subscription=subscription, activity_type="lot.created")
    assert _send(subscription) == 1
    assert _ids(receiver, 3) == [failing_test.webhook_id]

    # Fixed: the next test send goes, closes the breaker, and the waiting deliveries follow it.
    receiver.default = 200
    passing_test = subscription_send_test(subscription=subscription, activity_type="lot.created")
    _send(subscription)
    assert _ids(receiver, 4) == [passing_test.webhook_id] + [e.webhook_id for e in waiting]
    assert EndpointHealth.objects.get(subscription=subscription).open_until is None


def test_a_new_url_starts_with_a_clean_record(org, receiver, breaker):
    breaker.WEBHOOKS_RETRY_SCHEDULE = [600] * 8  # the three failed ones are not due again
    subscription, _ = make_subscription(org, url="https://127.0.0.1:1/old")  # bad input: nothing listens there
    _record(org, 3)
    assert _send(subscription) == 3  # connection refused, three times
    assert EndpointHealth.objects.get(subscription=subscription).open_until is not None

    subscription_update(subscription=subscription, url=receiver.url, activity_types=["lot.created"])
    (event,) = _record(org)
    assert _send(subscription) == 1

    assert _ids(receiver) == [event.webhook_id]
    assert Delivery.objects.get(event=event).state == Delivery.State.SUCCEEDED


# --- per-endpoint concurrency cap ----------------------------------------------------

def test_an_endpoint_whose_slots_are_all_held_sends_nothing_until_one_is_released(org, receiver, monkeypatch):
    monkeypatch.setattr(slots, "ENDPOINT_SENDERS", 2)
    busy, _ = make_subscription(org, url=receiver.url)
    other, _ = make_subscription(org, url=receiver.url + "/other")
    (event,) = _record(org)
    # Bad input for the sender: both of busy's slots are held by two other senders (other workers, other machines).
    until = timezone.now() + timedelta(seconds=30)
    for holder in ("other-sender-1", "other-sender-2"):
        assert slots.slots_take(endpoint=(slots.endpoint_scope(busy.id), 2),
                                organisation=(slots.organisation_scope(org.id), slots.ORGANISATION_SENDERS),
                                holder=holder, until=until)
    assert slots.slots_in_use(scope=slots.endpoint_scope(busy.id)) == 2

    assert _send(busy) == 0
    waiting = Delivery.objects.get(subscription=busy)
    # Left as it was: due, unclaimed, no attempt spent.
    assert waiting.state == Delivery.State.PENDING and waiting.attempt_count == 0
    assert waiting.next_attempt_at <= timezone.now() and waiting.locked_until is None
    assert receiver.received == []

    # Another endpoint of the same organisation is not held back.
    assert _send(other) == 1
    assert [r.path for r in receiver.received] == ["/hooks/other"]

    slots.slots_release(holder="other-sender-1")  # one of those senders finished
    assert _send(busy) == 1
    assert [r.path for r in receiver.received] == ["/hooks/other", "/hooks"]
    assert receiver.received[-1].headers["webhook-id"] == event.webhook_id
    assert Delivery.objects.get(id=waiting.id).state == Delivery.State.SUCCEEDED


# --- automatic pause ---------------------------------------------------------------------

def test_failing_every_attempt_for_five_days_pauses_the_subscription(org, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [3600] * 200
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    with time_machine.travel(T0, tick=False):
        _record(org, 5)
        _send(subscription)
    assert len(receiver.received) == 5

    # Four days on, still failing: not yet.
    with time_machine.travel(T0 + timedelta(days=4), tick=False):
        _send(subscription)
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE

    with time_machine.travel(T0 + timedelta(days=5, minutes=1), tick=False):
        _send(subscription)
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
    _send(subscription)
    assert len(receiver.received) == sent_before + 5
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.SUCCEEDED}


def test_fewer_than_a_handful_of_failed_deliveries_never_pause(org, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [3600] * 200
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    with time_machine.travel(T0, tick=False):
        _record(org, 4)  # bad input for the rule: only four deliveries ever failed
        _send(subscription)
    with time_machine.travel(T0 + timedelta(days=6), tick=False):
        _send(subscription)
    assert len(receiver.received) == 4 + 1  # the fifth consecutive failure opened the breaker
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE


def test_one_success_in_the_period_restarts_the_clock(org, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [3600] * 200
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    with time_machine.travel(T0, tick=False):
        _record(org, 5)
        _send(subscription)
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        receiver.script.append(200)
        _send(subscription)  # the probe gets through, the other four fail again
    with time_machine.travel(T0 + timedelta(days=5, minutes=1), tick=False):
        _send(subscription)
    assert len(receiver.received) == 5 + 5 + 1  # the fifth failure since the success opened the breaker
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE
    state = EndpointHealth.objects.get(subscription=subscription)
    assert state.failing_since == T0 + timedelta(days=3)  # the first failure after the success


# --- the one gate ------------------------------------------------------------------------

GATE_CASES = {  # (open_until, probe_until) in seconds from now (None: unset) -> what gate() answers
    "no record": (None, None, None, health.Gate.ALL),
    "a clean record": (True, None, None, health.Gate.ALL),
    "open, cooling down": (True, 60, None, health.Gate.TESTS_ONLY),
    "cool-down over, no probe yet": (True, -1, None, health.Gate.PROBE),
    "cool-down over to the microsecond": (True, 0, None, health.Gate.PROBE),
    "probe in flight": (True, -1, 30, health.Gate.TESTS_ONLY),
    "probe's lease ran out (its sender died)": (True, -1, -1, health.Gate.PROBE),
    "opened again after a failed probe": (True, 120, -5, health.Gate.TESTS_ONLY),
}


@pytest.mark.parametrize("case", list(GATE_CASES))
def test_the_gate_and_its_query_expression_agree(org, case):
    has_record, open_in, probe_in, expected = GATE_CASES[case]
    subscription, _ = make_subscription(org)
    (event,) = _record(org)
    now = timezone.now()

    def at(seconds):
        return None if seconds is None else now + timedelta(seconds=seconds)

    if has_record:
        EndpointHealth.objects.create(subscription=subscription, url=subscription.url, open_until=at(open_in),
                                      probe_until=at(probe_in), consecutive_failures=5 if open_in else 0)
    record = EndpointHealth.objects.filter(subscription=subscription).first()

    gate = health.gate(record, now)
    matched = Delivery.objects.filter(health.gate_lets_deliveries("subscription__endpoint_health__", now),
                                      event=event).exists()

    assert gate is expected
    assert matched == (gate is not health.Gate.TESTS_ONLY)  # the sweeper and the last look ask the same question
