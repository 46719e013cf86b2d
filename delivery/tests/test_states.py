"""The Delivery state machine (delivery.states): each transition, and the retry rules.

The transitions are called as the sender and the operator actions call them;
each test checks what the Delivery Log shows afterwards (state, attempts, due time, last error).
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from conftest import make_subscription
from delivery import states
from delivery.models import Attempt, Delivery
from delivery.transport import Response
from subscriptions.activity import record_activity
from subscriptions.services import subscription_pause, subscription_send_test

pytestmark = pytest.mark.django_db

State = Delivery.State


@pytest.fixture
def subscription(org, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [10, 100]
    subscription, _ = make_subscription(org)
    return subscription


def _deliveries(org, n=1):
    events = [record_activity(organisation=org, activity_type="lot.created", data={"n": i}) for i in range(n)]
    return [Delivery.objects.get(event=e) for e in events]


def _lease(seconds=30):
    return timezone.now() + timedelta(seconds=seconds)


def _record(delivery, response: Response) -> Delivery:
    """Record one attempt of the delivery as the sender does (its own transaction); return the delivery reloaded."""
    delivery.refresh_from_db()
    attempt = Attempt(
        delivery_id=delivery.id, number=delivery.attempt_count + 1, url="https://hooks.example.com/in",
        started_at=timezone.now(), duration_ms=response.duration_ms, status_code=response.status_code,
        error_kind=response.error_kind, error_message=response.error_message,
    )
    with transaction.atomic():
        states.delivery_record(delivery=delivery, attempt=attempt, response=response)
    delivery.refresh_from_db()
    return delivery


def _answer(status, **headers):
    return Response(duration_ms=5, status_code=status, headers=headers)


def _seconds_until(moment):
    return (moment - timezone.now()).total_seconds()


# --- creation ----------------------------------------------------------------------

def test_a_recorded_event_is_pending_and_due_at_once_or_held_for_a_paused_subscription(org, subscription):
    paused, _ = make_subscription(org, url="https://paused.example.com/in")
    subscription_pause(subscription=paused)
    event = record_activity(organisation=org, activity_type="lot.created", data={})

    active = Delivery.objects.get(event=event, subscription=subscription)
    held = Delivery.objects.get(event=event, subscription=paused)
    assert active.state == State.PENDING and active.next_attempt_at == event.created_at
    assert held.state == State.HELD and held.next_attempt_at is None  # kept, never dropped
    assert active.attempt_count == held.attempt_count == 0


# --- a sender's claim ------------------------------------------------------------------

def test_a_claim_takes_due_unclaimed_deliveries_oldest_first_up_to_the_limit(org, subscription):
    oldest, not_due, claimed, expired, newest = _deliveries(org, 5)
    # Bad input for the claim: one not due yet, one claimed by a live sender, one whose sender's lease ran out.
    Delivery.objects.filter(id=not_due.id).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    Delivery.objects.filter(id=claimed.id).update(locked_until=_lease())
    Delivery.objects.filter(id=expired.id).update(locked_until=timezone.now() - timedelta(seconds=1))
    until = _lease()

    first = states.deliveries_claim(subscription_id=subscription.id, until=until, limit=2)
    rest = states.deliveries_claim(subscription_id=subscription.id, until=until, limit=20)

    assert [d.id for d in first] == [oldest.id, expired.id]
    assert [d.id for d in rest] == [newest.id]
    assert first[0].webhook_id == oldest.event.webhook_id  # the event comes with the claim
    assert first[0].body == oldest.event.body
    assert set(Delivery.objects.filter(locked_until=until).values_list("id", flat=True)) == {
        oldest.id, expired.id, newest.id}
    assert states.deliveries_claim(subscription_id=subscription.id, until=until, limit=20) == []
    assert states.has_sendable(subscription_id=subscription.id) is False


def test_a_claim_for_tests_only_leaves_the_other_deliveries_due(org, subscription):
    (ordinary,) = _deliveries(org)
    test_event = subscription_send_test(subscription=subscription, activity_type="lot.created")

    claimed = states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=20, tests_only=True)

    assert [d.event_id for d in claimed] == [test_event.id]
    assert states.has_sendable(subscription_id=subscription.id, tests_only=True) is False
    assert states.has_sendable(subscription_id=subscription.id) is True
    assert Delivery.objects.get(id=ordinary.id).locked_until is None


def test_give_back_leaves_deliveries_as_they_were_and_extend_pushes_the_lease(org, subscription):
    a, b = _deliveries(org, 2)
    claimed = states.deliveries_claim(subscription_id=subscription.id, until=_lease(10), limit=20)
    assert len(claimed) == 2
    later = _lease(60)

    states.deliveries_extend(ids=[a.id], until=later)
    states.deliveries_give_back(ids=[b.id])

    a.refresh_from_db()
    b.refresh_from_db()
    assert a.locked_until == later
    assert b.locked_until is None and b.state == State.PENDING and b.attempt_count == 0
    assert b.next_attempt_at == b.created_at  # still due as recorded
    assert [d.id for d in states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=20)] == [b.id]


# --- the outcome of an attempt ---------------------------------------------------------

def test_a_2xx_succeeds(org, subscription):
    (delivery,) = _deliveries(org)
    states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=1)

    delivery = _record(delivery, _answer(204))

    assert delivery.state == State.SUCCEEDED and delivery.completed_at is not None
    assert delivery.attempt_count == 1 and delivery.last_status_code == 204 and delivery.last_error == ""
    assert delivery.next_attempt_at is None and delivery.locked_until is None


def test_a_failure_is_due_again_after_the_first_delay_of_the_schedule_with_jitter(org, subscription):
    (delivery,) = _deliveries(org)
    states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=1)

    delivery = _record(delivery, _answer(500))  # bad input: a server error

    assert delivery.state == State.PENDING and delivery.locked_until is None
    assert delivery.attempt_count == 1 and delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
    assert 8.9 <= _seconds_until(delivery.next_attempt_at) <= 11  # 10 s +/- 10 %


def test_a_transport_error_is_recorded_with_its_message(org, subscription):
    (delivery,) = _deliveries(org)
    refused = Response(duration_ms=3, error_kind="connection", error_message="Connection refused by 127.0.0.1:1.")

    delivery = _record(delivery, refused)  # bad input: nothing listens

    assert delivery.state == State.PENDING and delivery.last_status_code is None
    assert delivery.last_error == "Connection refused by 127.0.0.1:1."


def test_the_retry_schedule_exhausted_fails_the_delivery_for_good(org, subscription):
    (delivery,) = _deliveries(org)
    delays = []
    for _ in range(2):
        delivery = _record(delivery, _answer(503))
        delays.append(_seconds_until(delivery.next_attempt_at))
    assert delivery.state == State.PENDING
    assert 8.9 <= delays[0] <= 11 and 89 <= delays[1] <= 111  # the schedule, one step per failure

    delivery = _record(delivery, _answer(503))  # the third failure: past the last scheduled retry

    assert delivery.state == State.FAILED and delivery.completed_at is not None
    assert delivery.next_attempt_at is None and delivery.attempt_count == 3
    assert states.has_sendable(subscription_id=subscription.id) is False


@pytest.mark.parametrize(
    ("status", "retry_after", "low", "high"),
    [
        (429, "600", 600, 601),  # asked for later than the schedule: honoured
        (503, "600", 600, 601),
        (429, "1", 8.9, 11),  # bad input: asks for sooner than the schedule; never earlier than the schedule
        (500, "600", 8.9, 11),  # bad input: Retry-After on a 500 is not honoured
        (429, "in a while", 8.9, 11),  # bad input: neither seconds nor a date
        (503, "inf", 8.9, 11),  # bad input: not delay-seconds (RFC 9110: digits only), ignored
        (503, "1e12", 8.9, 11),
        (503, "1e308", 8.9, 11),
        (503, "600.5", 8.9, 11),  # a fraction is not delay-seconds either
        (503, "-5", 8.9, 11),
        (503, "99999999999999999999999", 3599, 3600),  # huge: cut to the schedule's longest interval (1 h here)
        (503, "9000000000", 3599, 3600),
        (429, "Fri, 31 Dec 9999 23:59:59 GMT", 3599, 3600),  # a date at the end of the calendar: cut to the cap
        (429, "Thu, 01 Jan 1970 00:00:00 GMT", 8.9, 11),  # a date in the past: now, so the schedule decides
    ],
)
def test_retry_after_pushes_the_retry_later_never_earlier_and_is_capped(org, subscription, status, retry_after,
                                                                          low, high, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [10, 100, 3600]
    (delivery,) = _deliveries(org)

    delivery = _record(delivery, _answer(status, **{"Retry-After": retry_after}))

    assert delivery.state == State.PENDING
    assert low - 1 <= _seconds_until(delivery.next_attempt_at) <= high


def test_410_gone_holds_the_delivery(org, subscription):
    (delivery,) = _deliveries(org)
    states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=1)

    delivery = _record(delivery, _answer(410))  # bad input: the endpoint says it is gone

    assert delivery.state == State.HELD and delivery.next_attempt_at is None and delivery.locked_until is None
    assert delivery.attempt_count == 1 and delivery.last_error == "HTTP 410" and delivery.completed_at is None


def test_a_delivery_cancelled_while_in_flight_stays_cancelled_but_counts_the_attempt(org, subscription):
    (delivery,) = _deliveries(org)
    states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=1)
    # The subscription is deleted while the request is in flight: the claimed delivery is cancelled too.
    assert states.deliveries_cancel(subscription_id=subscription.id) == 1

    delivery = _record(delivery, _answer(200))

    assert delivery.state == State.CANCELLED and delivery.last_error == ""
    assert delivery.attempt_count == 1 and delivery.last_status_code == 200
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", flat=True)) == [1]
    # Attempt numbers stay unique: a Redeliver's first attempt is number 2.
    assert states.delivery_redeliver(delivery=delivery) is True
    assert _record(delivery, _answer(200)).attempt_count == 2
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", flat=True)) == [1, 2]


def test_a_delivery_held_while_in_flight_stays_held_and_a_failure_does_not_make_it_due(org, subscription):
    (delivery,) = _deliveries(org)
    states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=1)
    assert states.delivery_hold(delivery_id=delivery.id) is True  # its sender found the subscription paused

    delivery = _record(delivery, _answer(500))

    assert delivery.state == State.HELD and delivery.next_attempt_at is None
    assert delivery.attempt_count == 1 and delivery.last_error == "HTTP 500"


# --- operator and lifecycle transitions --------------------------------------------------

def test_pause_holds_what_no_sender_has_claimed_and_resume_makes_it_due_at_once(org, subscription):
    waiting, retrying, in_flight = _deliveries(org, 3)
    retrying = _record(retrying, _answer(500))  # a retry waiting for its turn is held too
    Delivery.objects.filter(id=in_flight.id).update(locked_until=_lease())  # bad input: a sender holds it

    assert states.deliveries_hold(subscription_id=subscription.id) == 2

    by_id = {d.id: d for d in Delivery.objects.all()}
    assert by_id[waiting.id].state == by_id[retrying.id].state == State.HELD
    assert by_id[waiting.id].next_attempt_at is None
    assert by_id[in_flight.id].state == State.PENDING  # its sender holds it before its POST or after its record
    assert states.delivery_hold(delivery_id=waiting.id) is False  # not pending any more

    before = timezone.now()
    assert states.deliveries_resume(subscription_id=subscription.id) == 2
    released = list(Delivery.objects.filter(id__in=[waiting.id, retrying.id]))
    assert {d.state for d in released} == {State.PENDING}
    assert {d.next_attempt_at for d in released} == {released[0].next_attempt_at}
    assert released[0].next_attempt_at >= before
    assert {d.attempt_count for d in released} == {0, 1}  # a release uses up no retry
    # Oldest first when they are due at the same moment (the retry was due later, before the pause).
    order = [d.id for d in states.deliveries_claim(subscription_id=subscription.id, until=_lease(), limit=20)]
    assert order == [waiting.id, retrying.id]


def test_delete_cancels_every_unfinished_delivery_claimed_ones_included(org, subscription):
    pending, held, claimed, done = _deliveries(org, 4)
    Delivery.objects.filter(id=held.id).update(state=State.HELD, next_attempt_at=None)
    Delivery.objects.filter(id=claimed.id).update(locked_until=_lease())
    done = _record(done, _answer(200))

    assert states.deliveries_cancel(subscription_id=subscription.id) == 3

    for delivery in (pending, held, claimed):
        delivery.refresh_from_db()
        assert delivery.state == State.CANCELLED and delivery.completed_at is not None
        assert delivery.last_error == states.DELETED and delivery.locked_until is None
    done.refresh_from_db()
    assert done.state == State.SUCCEEDED  # finished deliveries keep their outcome


def test_redeliver_makes_a_finished_delivery_due_now_with_a_fresh_schedule(org, subscription):
    delivery, unfinished = _deliveries(org, 2)
    assert states.delivery_redeliver(delivery=unfinished) is False  # bad input: still pending
    for _ in range(3):
        delivery = _record(delivery, _answer(500))
    assert delivery.state == State.FAILED

    assert states.delivery_redeliver(delivery=delivery) is True
    delivery.refresh_from_db()
    assert delivery.state == State.PENDING and delivery.completed_at is None
    assert delivery.next_attempt_at <= timezone.now() and delivery.schedule_offset == 3
    assert states.delivery_redeliver(delivery=delivery) is False  # not twice

    # The schedule restarts: the first failure after Redeliver waits the first delay, not none at all.
    delivery = _record(delivery, _answer(500))
    assert delivery.state == State.PENDING and 8.9 <= _seconds_until(delivery.next_attempt_at) <= 11
    delivery = _record(delivery, _answer(500))
    delivery = _record(delivery, _answer(500))
    assert delivery.state == State.FAILED and delivery.attempt_count == 6


def test_recover_sends_failed_deliveries_since_a_moment_again_or_holds_them_when_paused(org, subscription):
    old, recent, succeeded = _deliveries(org, 3)
    for delivery in (old, recent, old, recent, old, recent):
        _record(delivery, _answer(500))
    _record(succeeded, _answer(200))
    Delivery.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=2))
    since = timezone.now() - timedelta(days=1)

    assert states.deliveries_recover(subscription=subscription, since=since) == 1
    assert states.deliveries_recover(subscription=subscription, since=since) == 0  # already pending again

    states_now = dict(Delivery.objects.values_list("id", "state"))
    assert states_now == {old.id: State.FAILED, recent.id: State.PENDING, succeeded.id: State.SUCCEEDED}
    recent.refresh_from_db()
    assert recent.schedule_offset == 3 and recent.next_attempt_at <= timezone.now()

    subscription_pause(subscription=subscription)
    subscription.refresh_from_db()
    assert states.deliveries_recover(subscription=subscription, since=timezone.now() - timedelta(days=3)) == 1
    old.refresh_from_db()
    assert old.state == State.HELD and old.next_attempt_at is None and old.completed_at is None


# --- the retry rules, on their own ---------------------------------------------------------

def test_next_attempt_at_follows_the_schedule_with_jitter_then_gives_up(settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [10, 100]
    now = timezone.now()
    firsts = [(states.next_attempt_at(attempts_made=1, now=now) - now).total_seconds() for _ in range(200)]
    assert 9 <= min(firsts) < max(firsts) <= 11  # spread, so many retries do not arrive in lockstep
    assert max(firsts) - min(firsts) > 1
    assert 90 <= (states.next_attempt_at(attempts_made=2, now=now) - now).total_seconds() <= 110
    assert states.next_attempt_at(attempts_made=3, now=now) is None
    assert (states.next_attempt_at(attempts_made=1, now=now, minimum_delay=500) - now).total_seconds() == 500


def test_summary_is_what_the_log_shows_for_an_attempt():
    assert states.summary(_answer(200)) == ""
    assert states.summary(_answer(502)) == "HTTP 502"
    timeout = Response(duration_ms=1, error_kind="timeout", error_message="x" * 400)  # bad input: a long message
    assert states.summary(timeout) == "x" * 300
