"""Delivery log pages and card numbers."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Delivery, Event
from delivery.selectors import cursor_decode, cursor_encode, delivery_log, subscription_card_stats
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def add(subscription, *, state, created_at, attempts=1, activity_type="lot.created"):
    event = Event.objects.create(organisation=subscription.organisation, activity_type=activity_type, body="{}",
                                 created_at=created_at)
    return Delivery.objects.create(event=event, subscription=subscription, activity_type=activity_type, state=state,
                                   attempt_count=attempts, created_at=created_at)


def test_cursor_round_trips_and_bad_cursors_mean_the_first_page():
    """Bad input: empty, not base64, base64 of junk, a naive timestamp, a bad uuid."""
    d = Delivery(id=uuid.uuid4(), created_at=datetime(2026, 4, 1, 12, 0, 0, 123456, tzinfo=UTC))
    assert cursor_decode(cursor_encode(d)) == (d.created_at, d.id)
    import base64
    for bad in ("", None, "%%%", "Zm9v", base64.urlsafe_b64encode(b"2026-04-01T12:00:00|abc").decode(),
                base64.urlsafe_b64encode(f"2026-04-01T12:00:00+00:00|{'z' * 32}".encode()).decode(),
                "\u00e9\u00e9"):
        assert cursor_decode(bad) is None, bad


def test_log_pages_do_not_overlap_and_filters_apply(org):
    subscription, _ = make_subscription(org)
    at = timezone.now()
    rows = [add(subscription, state=Delivery.State.SUCCEEDED, created_at=at) for _ in range(5)]  # all tied
    rows += [add(subscription, state=Delivery.State.FAILED, created_at=at - timedelta(seconds=1)) for _ in range(3)]
    first = delivery_log(subscription=subscription, limit=4)
    assert len(first.deliveries) == 4 and first.older_cursor
    second = delivery_log(subscription=subscription, limit=4, cursor=first.older_cursor)
    assert len(second.deliveries) == 4 and second.older_cursor is None
    seen = [d.id for d in first.deliveries + second.deliveries]
    assert sorted(seen) == sorted(d.id for d in rows)
    failed = delivery_log(subscription=subscription, state="failed")
    assert {d.id for d in failed.deliveries} == {d.id for d in rows[5:]}
    assert delivery_log(subscription=subscription, state="bogus").deliveries[0].id in {d.id for d in rows}
    assert not first.has_unfinished
    add(subscription, state=Delivery.State.PENDING, created_at=at + timedelta(seconds=1), attempts=0)
    assert delivery_log(subscription=subscription, limit=4).has_unfinished


def test_card_stats_last_delivery_success_rate_and_held(org):
    now = timezone.now()
    a, _ = make_subscription(org, url="https://a.example.com/in")
    b, _ = make_subscription(org, url="https://b.example.com/in")
    c, _ = make_subscription(org, url="https://c.example.com/in")
    for i in range(199):
        add(a, state=Delivery.State.SUCCEEDED, created_at=now - timedelta(minutes=i + 1))
    add(a, state=Delivery.State.FAILED, created_at=now - timedelta(hours=3))
    add(a, state=Delivery.State.FAILED, created_at=now - timedelta(hours=25))  # outside the window
    add(a, state=Delivery.State.PENDING, created_at=now - timedelta(seconds=5), attempts=0)  # not attempted yet
    Subscription.objects.filter(id=b.id).update(state=Subscription.State.PAUSED)
    b.refresh_from_db()
    last_b = add(b, state=Delivery.State.HELD, created_at=now - timedelta(minutes=1), attempts=0)
    add(b, state=Delivery.State.HELD, created_at=now - timedelta(minutes=2), attempts=0)

    stats = subscription_card_stats(subscriptions=[a, b, c], now=now)
    assert stats[a.id].attempted == 200
    assert stats[a.id].success_rate == 99  # 199/200 rounds down: 100 % only when nothing failed
    assert stats[a.id].last_delivery.state == Delivery.State.PENDING
    assert stats[b.id].held == 2 and stats[b.id].last_delivery.id == last_b.id
    assert stats[b.id].success_rate is None
    assert stats[c.id].last_delivery is None and stats[c.id].success_rate is None and stats[c.id].attempted == 0
    assert subscription_card_stats(subscriptions=[]) == {}


def test_card_stats_cost_a_fixed_number_of_queries(org, django_assert_num_queries):
    subs = []
    for i in range(15):
        s, _ = make_subscription(org, url=f"https://{i}.example.com/in")
        add(s, state=Delivery.State.SUCCEEDED, created_at=timezone.now())
        subs.append(s)
    Subscription.objects.filter(id=subs[0].id).update(state=Subscription.State.PAUSED)
    subs[0].refresh_from_db()
    with django_assert_num_queries(4):
        subscription_card_stats(subscriptions=subs)
