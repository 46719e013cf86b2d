"""Delivery log pages and card numbers."""

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Delivery, Event
from delivery.selectors import InvalidCursor, cursor_decode, cursor_encode, delivery_log, subscription_card_stats
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def add(subscription, *, state, created_at, attempts=1, activity_type="lot.created"):
    event = Event.objects.create(organisation=subscription.organisation, activity_type=activity_type, body="{}",
                                 created_at=created_at)
    return Delivery.objects.create(event=event, subscription=subscription, activity_type=activity_type, state=state,
                                   attempt_count=attempts, created_at=created_at)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_cursor_round_trips_and_bad_cursors_are_refused_with_a_reason():
    """Bad input: not base64, base64 of junk, a naive timestamp, a bad uuid."""
    d = Delivery(id=uuid.uuid4(), created_at=datetime(2026, 4, 1, 12, 0, 0, 123456, tzinfo=UTC))
    assert cursor_decode(cursor_encode(d)) == (d.created_at, d.id)
    assert cursor_decode("") is None and cursor_decode(None) is None  # no cursor: the first page
    for bad in ("%%%", "Zm9v", _cursor("2026-04-01T12:00:00|abc"), _cursor(f"2026-04-01T12:00:00+00:00|{'z' * 32}"),
                "\u00e9\u00e9", _cursor(f"2026-04-01T12:00:00|{uuid.uuid4().hex}")):
        with pytest.raises(InvalidCursor):
            cursor_decode(bad)


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                   "9999-12-31T23:59:59.999999-00:01", "0001-01-01T00:00:00+00:00:01"])
def test_a_cursor_at_the_edge_of_the_calendar_gives_the_first_page_and_says_why(org, stamp):
    # Finding 3 of issue 21: these used to be a 500 (OverflowError converting them to UTC) for any member.
    subscription, _ = make_subscription(org)
    newest = add(subscription, state=Delivery.State.SUCCEEDED, created_at=timezone.now())
    cursor = _cursor(f"{stamp}|{uuid.uuid4().hex}")
    with pytest.raises(InvalidCursor, match="outside the dates the Delivery Log holds"):
        cursor_decode(cursor)

    page = delivery_log(subscription=subscription, cursor=cursor)

    assert [d.id for d in page.deliveries] == [newest.id]
    assert page.cursor_error == ("This page link points outside the dates the Delivery Log holds. "
                                 "Showing the newest deliveries.")


def test_a_cursor_in_a_far_zone_but_inside_the_calendar_is_used_in_utc(org):
    subscription, _ = make_subscription(org)
    at = timezone.now()
    older = add(subscription, state=Delivery.State.SUCCEEDED, created_at=at - timedelta(hours=1))
    add(subscription, state=Delivery.State.SUCCEEDED, created_at=at)
    local = (at - timedelta(minutes=30)).astimezone(timezone.get_fixed_timezone(14 * 60))
    page = delivery_log(subscription=subscription, cursor=_cursor(f"{local.isoformat()}|{'f' * 32}"))
    assert [d.id for d in page.deliveries] == [older.id] and page.cursor_error == ""


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


@pytest.mark.services_only
@pytest.mark.parametrize("filters, index, column", [
    ({"state": "cancelled"}, "delivery_log_state", "state"),  # a state no row has: an empty range, not the log
    ({"state": "failed"}, "delivery_failed", "subscription_id"),  # the failed ones' own (partial) index
    ({"activity_type": "order.created"}, "delivery_log_type", "activity_type"),  # a type no row has
    ({"state": "cancelled", "activity_type": "lot.created"}, "delivery_log_state", "state"),  # combined, no row
    ({"state": "failed", "activity_type": "lot.created"}, "delivery_failed", "subscription_id"),
    ({"since": datetime(2016, 1, 1, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)},
     "delivery_log", "created_at"),  # ten years wide
])
def test_each_log_filter_is_one_index_range_on_postgresql(org, filters, index, column):
    """Each search of the log reads a range of an index that starts with the subscription and the filtered column
    (Failed: the failed deliveries' partial index, which starts with the subscription),
    in the log's order (no sort, no filter over the whole log): its time does not grow with the log."""
    from django.db import connection

    from delivery.selectors import delivery_log_queryset

    subscription, _ = make_subscription(org)
    for i in range(3):
        add(subscription, state="succeeded", created_at=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=i))
    with connection.cursor() as cursor:  # the test's transaction: as if the table were too big to read whole
        cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    plan = delivery_log_queryset(subscription=subscription, **filters)[:51].explain()
    assert f"using {index} on" in plan and "Sort" not in plan, plan
    condition = plan[plan.index("Index Cond"):].splitlines()[0]
    assert "subscription_id" in condition and column in condition, plan


@pytest.mark.services_only
def test_a_search_by_event_id_reads_the_events_index_on_postgresql(org):
    from django.db import connection

    from delivery.selectors import delivery_log_queryset

    subscription, _ = make_subscription(org)
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(organisation=org, activity_type="lot.created", body="{}", created_at=now - timedelta(minutes=i))
        for i in range(300))
    Delivery.objects.bulk_create(
        Delivery(event=e, subscription=subscription, activity_type="lot.created", state="succeeded",
                 created_at=e.created_at) for e in events)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = delivery_log_queryset(subscription=subscription, event_id=events[150].id)[:51].explain()
    assert "Index Cond" in plan and "event_id" in plan[plan.index("Index Cond"):].splitlines()[0], plan
