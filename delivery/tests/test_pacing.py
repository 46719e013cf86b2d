"""The rate limit's pace (delivery.pacing): reservations 1/rate apart on one row, and what a paced sender does."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import make_subscription
from delivery import health, pacing, sender
from delivery.health_view import delivery_waits, endpoint_health_view
from delivery.models import Delivery, EndpointPace
from delivery.tasks import send_endpoint
from subscriptions.activity import record_activity

pytestmark = pytest.mark.django_db


def _record(org, n=1):
    return [record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"LOT-{i}"})
            for i in range(n)]


def test_reservations_follow_one_another_at_the_rate_and_one_too_far_ahead_is_refused_with_its_wait(org):
    subscription, _ = make_subscription(org, max_per_second=10)

    first = pacing.pace_reserve(subscription_id=subscription.id, rate=10, count=2)
    second = pacing.pace_reserve(subscription_id=subscription.id, rate=10, count=2)

    assert first.granted and len(first.moments) == 2
    assert first.moments[1] - first.moments[0] == pytest.approx(0.1)
    # The first reserved 0.2 s of the rate: the next may start only 0.05 s (BURST) before that ends.
    assert not second.granted
    assert 0.1 < second.wait <= 0.15 + 0.01
    assert EndpointPace.objects.get(subscription=subscription).tat == pytest.approx(first.moments[0] + 0.2)


def test_a_reservation_after_an_idle_while_starts_now_not_in_the_past(org):
    """Bad input: a row whose schedule ended long ago (idle endpoint) grants no burst of saved-up requests."""
    subscription, _ = make_subscription(org, max_per_second=5)
    EndpointPace.objects.create(subscription=subscription, tat=time.time() - 3600)

    before = time.time()
    reservation = pacing.pace_reserve(subscription_id=subscription.id, rate=5, count=3)

    assert reservation.moments[0] >= before
    gaps = [b - a for a, b in zip(reservation.moments, reservation.moments[1:], strict=False)]
    assert gaps == [pytest.approx(0.2, abs=1e-5)] * 2


def test_a_paced_sender_sends_each_request_at_its_reserved_moment_in_batches_of_a_fifth_of_a_second(
        org, receiver, monkeypatch):
    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=20)
    events = _record(org, 10)
    claims, reservations = [], []
    real_claim, real_reserve = sender.states.deliveries_claim, pacing.pace_reserve
    monkeypatch.setattr(sender.states, "deliveries_claim",
                        lambda **kw: claims.append(kw["limit"]) or real_claim(**kw))
    monkeypatch.setattr(pacing, "pace_reserve",
                        lambda **kw: reservations.append(real_reserve(**kw)) or reservations[-1])

    send_endpoint(str(subscription.id))

    assert [r.headers["webhook-id"] for r in receiver.received] == [e.webhook_id for e in events]
    assert set(claims) == {4}  # 20/s: 0.2 s of it
    moments = [m for r in reservations for m in r.moments]
    # Never closer than 1/rate; a batch that starts after the schedule ran out starts at its claim, not earlier.
    assert all(b - a >= 0.05 - 1e-5 for a, b in zip(moments, moments[1:], strict=False)), moments
    assert moments[1] - moments[0] == pytest.approx(0.05, abs=1e-5)
    assert all(r.at >= m for r, m in zip(receiver.received, moments, strict=True))  # none before its moment


def test_a_request_that_leaves_late_pushes_the_next_so_none_leave_closer_than_1_over_the_rate(
        org, receiver, monkeypatch):
    """Bad timing: the read before the second request of each batch takes 80 ms (a busy machine), longer than
    the 50 ms interval at 20/s. On its moments alone the third request would leave 20 ms after the late one;
    each request leaves at least 50 ms after the one before, and the endpoint's schedule ends one interval
    after the last, for whichever sender comes next."""
    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=20)
    events = _record(org, 8)
    posts, reads = [], []
    real_snapshot, real_post = sender.snapshots.delivery_snapshot, sender.transport.post

    def slow_snapshot(**kw):
        reads.append(kw["delivery_id"])
        if len(reads) % 3 == 1:  # the second request of each batch of four (the first is read with the claim)
            time.sleep(0.08)
        return real_snapshot(**kw)

    monkeypatch.setattr(sender.snapshots, "delivery_snapshot", slow_snapshot)
    monkeypatch.setattr(sender.transport, "post",
                        lambda *a, **kw: posts.append(time.time()) or real_post(*a, **kw))

    send_endpoint(str(subscription.id))

    assert [r.headers["webhook-id"] for r in receiver.received] == [e.webhook_id for e in events]
    gaps = [b - a for a, b in zip(posts, posts[1:], strict=False)]
    assert min(gaps) >= 0.05 - 1e-3, gaps
    assert EndpointPace.objects.get(subscription=subscription).tat >= posts[-1] + 0.05 - 1e-3


def test_a_paced_backlog_reserves_each_next_batch_before_the_last_request_of_the_one_before(
        org, receiver, monkeypatch):
    """50/s: batches of 10. Reserved after its last request (answer, record, claim), each next batch would
    start a little after the schedule ran out and lose that gap; reserved before it, the schedule goes on."""
    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=50)
    events = _record(org, 30)
    steps, reservations = [], []
    real_reserve, real_post = pacing.pace_reserve, sender.transport.post

    def reserve(**kw):
        reservation = real_reserve(**kw)
        steps.append(f"reserve {kw['count']}")
        reservations.append(reservation)
        return reservation

    monkeypatch.setattr(pacing, "pace_reserve", reserve)
    monkeypatch.setattr(sender.transport, "post", lambda *a, **kw: steps.append("post") or real_post(*a, **kw))

    send_endpoint(str(subscription.id))

    assert [r.headers["webhook-id"] for r in receiver.received] == [e.webhook_id for e in events]
    assert steps == (["reserve 10"] + ["post"] * 9 + ["reserve 10"] + ["post"] * 10 + ["reserve 10"]
                     + ["post"] * 11)
    moments = [m for r in reservations for m in r.moments]
    assert all(b - a >= 0.02 - 1e-5 for a, b in zip(moments, moments[1:], strict=False)), moments
    assert all(r.end == pytest.approx(r.moments[-1] + 0.02) for r in reservations)


def test_a_limit_removed_while_a_paced_batch_is_sent_spaces_its_last_request_by_its_own_reservation(
        org, receiver, monkeypatch):
    """Bad timing: the operator removes the endpoint's 50/s limit while a paced batch of 10 is being sent. The
    claim ahead (before that batch's last request) reads the endpoint without a rate: the batch's last
    request still leaves one interval (20 ms) after the one before it, by its own reservation, and the next
    batch goes unpaced. Every delivery arrives once, in order (the sender once divided by the missing rate)."""
    from subscriptions.models import Subscription

    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=50)
    events = _record(org, 20)
    posts, reservations = [], []
    real_post, real_reserve = sender.transport.post, pacing.pace_reserve

    def post(*a, **kw):
        posts.append(time.time())
        if len(posts) == 1:
            Subscription.objects.filter(id=subscription.id).update(max_per_second=None)
        return real_post(*a, **kw)

    monkeypatch.setattr(sender.transport, "post", post)
    monkeypatch.setattr(pacing, "pace_reserve", lambda **kw: reservations.append(kw) or real_reserve(**kw))

    send_endpoint(str(subscription.id))

    assert [r.headers["webhook-id"] for r in receiver.received] == [e.webhook_id for e in events]
    assert Delivery.objects.filter(subscription=subscription, state=Delivery.State.SUCCEEDED).count() == 20
    assert [r["count"] for r in reservations] == [10]  # the first batch only: the second went unpaced
    gaps = [b - a for a, b in zip(posts[:10], posts[1:10], strict=False)]
    assert min(gaps) >= 0.02 - 1e-3, gaps


def test_a_paced_batch_that_fails_gives_back_the_batch_claimed_ahead_for_the_breaker_to_decide(
        org, receiver, monkeypatch):
    """Bad input: the last request of a full batch (the next one claimed ahead behind it) is answered 500,
    and that failure opens the breaker: nothing claimed before it may go."""
    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=50)
    _record(org, 20)
    receiver.script = [200] * 9 + [500]  # then 200
    monkeypatch.setattr(health, "BREAKER_THRESHOLD", 1)

    send_endpoint(str(subscription.id))

    assert len(receiver.received) == 10
    deliveries = Delivery.objects.filter(subscription=subscription)
    assert deliveries.filter(state=Delivery.State.SUCCEEDED).count() == 9
    waiting = deliveries.exclude(state=Delivery.State.SUCCEEDED)
    assert {d.state for d in waiting} == {Delivery.State.PENDING}
    assert sorted(d.attempt_count for d in waiting) == [0] * 10 + [1]
    assert not waiting.filter(locked_until__gt=timezone.now()).exists()  # the batch claimed ahead was given back


def test_a_paced_endpoint_that_must_wait_long_gives_its_batch_back_and_schedules_its_next_sender(
        org, receiver, monkeypatch):
    """Bad input: the endpoint's schedule is reserved 2 s ahead (other machines sent a lot just now)."""
    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=1)
    EndpointPace.objects.create(subscription=subscription, tat=time.time() + 2)
    _record(org, 3)
    resumed = []
    monkeypatch.setattr(sender.wakeups, "endpoint_resume_in", lambda sid, seconds: resumed.append(seconds))

    assert send_endpoint(str(subscription.id)) == 0

    assert receiver.received == []
    assert len(resumed) == 1 and 1.5 < resumed[0] <= 2.0
    waiting = Delivery.objects.all()
    assert {d.state for d in waiting} == {Delivery.State.PENDING}
    assert not waiting.filter(locked_until__isnull=False).exists()  # given back: no thread holds them
    assert {d.attempt_count for d in waiting} == {0}  # waiting used no retry and is no failure


def test_an_unlimited_endpoint_never_touches_the_pace(org, receiver):
    subscription, _ = make_subscription(org, url=receiver.url)
    _record(org, 3)
    with CaptureQueriesContext(connection) as queries:
        send_endpoint(str(subscription.id))
    assert len(receiver.received) == 3
    table = EndpointPace._meta.db_table  # read only as a LEFT JOIN of the subscription (its slow-down)
    writes_or_reads = (f'UPDATE "{table}"', f'INSERT INTO "{table}"')
    assert not [q["sql"] for q in queries.captured_queries
                if q["sql"].startswith(writes_or_reads) or f'FROM "{table}"' in q["sql"]]
    assert not EndpointPace.objects.exists()


def test_a_due_delivery_of_a_limited_endpoint_says_it_waits_for_its_turn_under_the_limit(org):
    subscription, _ = make_subscription(org, max_per_second=20)
    (event,) = _record(org)
    delivery = Delivery.objects.get(event=event)

    health = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    wait = delivery_waits(subscription=subscription, deliveries=[delivery], health=health)[delivery.id]

    assert wait.text + wait.after == "Due now: waiting for its turn under the endpoint's rate limit (rate limit 20/s)"
