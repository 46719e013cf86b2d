"""The detail page: what it shows, the Delivery Log (filters, keyset pages, live refresh), its cost at 100k rows."""

import base64
import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from delivery.health_view import LOST_COUNT_CAP
from delivery.models import Delivery, Event
from delivery.selectors import PAGE_SIZE, delivery_log_queryset
from subscriptions.models import Subscription

pytestmark = pytest.mark.usefixtures("web_settings")


@pytest.fixture
def subscription(org, alice):
    subscription, _ = make_subscription(org, activity_types=["lot.created", "order.created"], created_by=alice)
    return subscription


def add_deliveries(subscription, count, *, start=None, state=Delivery.State.SUCCEEDED, activity_type="lot.created",
                   same_time_every=1):
    """Bulk-insert count deliveries, one second apart (groups of same_time_every share a timestamp)."""
    start = start or timezone.now() - timedelta(days=30)
    event = Event.objects.create(organisation=subscription.organisation, activity_type=activity_type,
                                 body="{}", created_at=start)
    rows = [
        Delivery(id=uuid.uuid4(), event=event, subscription=subscription, activity_type=activity_type, state=state,
                 attempt_count=1, last_status_code=200 if state == Delivery.State.SUCCEEDED else 500,
                 last_error="" if state == Delivery.State.SUCCEEDED else "HTTP 500",
                 created_at=start + timedelta(seconds=i // same_time_every))
        for i in range(count)
    ]
    Delivery.objects.bulk_create(rows, batch_size=5000)
    return rows


def detail(subscription, **params):
    return reverse("console:subscription_detail", args=[subscription.id]), params


def event_links(page):
    return re.findall(r'href="/administration/webhooks/[0-9a-f-]+/deliveries/([0-9a-f-]+)/"', page)


def test_detail_shows_endpoint_types_state_creator_and_trail(client, alice, subscription):
    client.force_login(alice)
    client.post(reverse("console:subscription_pause", args=[subscription.id]))
    page = client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "https://hooks.example.com/in" in page
    assert "Lot created" in page and "Order created" in page
    assert "Paused by alice." in page  # the trail's actor
    assert "by alice," in page
    for label in ("Test Webhook", "Regenerate Secret", ">Resume<", ">Edit<", ">Delete<", "Delivery Log"):
        assert label in page, label
    trail = page[page.index('id="trail-heading"'):]
    assert trail.index("Paused") < trail.index("Created")  # newest first
    assert "No deliveries yet" in page


def test_log_rows_newest_first_with_their_columns(client, alice, subscription):
    older = add_deliveries(subscription, 1, state=Delivery.State.FAILED, start=timezone.now() - timedelta(hours=2))
    newer = add_deliveries(subscription, 1, start=timezone.now() - timedelta(hours=1))
    retrying = add_deliveries(subscription, 1, state=Delivery.State.PENDING, activity_type="order.created",
                              start=timezone.now())[0]
    Delivery.objects.filter(id=retrying.id).update(next_attempt_at=timezone.now() + timedelta(minutes=5),
                                                  last_error="Connection refused", last_status_code=None)
    client.force_login(alice)
    page = client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert event_links(page) == [str(retrying.id), str(newer[0].id), str(older[0].id)]
    assert "Connection refused" in page and "HTTP 500" in page and "HTTP 200" in page
    assert ">Retrying<" in page and ">Failed<" in page and ">Succeeded<" in page
    assert f"evt_{retrying.event_id.hex}" in page
    # A pending delivery on the first page: the log asks the browser to refresh it.
    assert 'data-refresh="' + reverse("console:subscription_log", args=[subscription.id]) in page


def test_log_does_not_refresh_when_everything_is_finished(client, alice, subscription):
    add_deliveries(subscription, 3)
    client.force_login(alice)
    page = client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "data-refresh" not in page
    fragment = client.get(reverse("console:subscription_log", args=[subscription.id])).content.decode()
    assert fragment.lstrip().startswith('<div class="log" data-log>') and "<html" not in fragment


def test_log_filters_by_state_and_type(client, alice, subscription):
    ok = add_deliveries(subscription, 3)
    failed = add_deliveries(subscription, 2, state=Delivery.State.FAILED)
    orders = add_deliveries(subscription, 2, activity_type="order.created")
    client.force_login(alice)
    url = reverse("console:subscription_detail", args=[subscription.id])
    assert set(event_links(client.get(url, {"state": "failed"}).content.decode())) == {str(d.id) for d in failed}
    assert set(event_links(client.get(url, {"type": "order.created"}).content.decode())) == {str(d.id) for d in orders}
    both = client.get(url, {"state": "succeeded", "type": "lot.created"}).content.decode()
    assert set(event_links(both)) == {str(d.id) for d in ok}
    assert 'option value="succeeded" selected' in both
    empty = client.get(url, {"state": "cancelled"}).content.decode()
    assert event_links(empty) == [] and "No deliveries match these filters." in empty


def test_bad_filters_and_cursor_fall_back_to_the_first_page(client, alice, subscription):
    """Bad input: an unknown state, a forged cursor, a cursor that is not base64."""
    rows = add_deliveries(subscription, 3)
    client.force_login(alice)
    url = reverse("console:subscription_detail", args=[subscription.id])
    for params in ({"state": "exploded"}, {"before": "Zm9vfGJhcg"}, {"before": "%%%"}, {"before": "x" * 5000}):
        response = client.get(url, params)
        assert response.status_code == 200, params
        assert len(event_links(response.content.decode())) == 3, params
    assert {str(d.id) for d in rows} == set(event_links(client.get(url).content.decode()))


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
@pytest.mark.parametrize("view", ["console:subscription_detail", "console:subscription_log"])
def test_a_page_link_at_the_edge_of_the_calendar_shows_the_first_page_and_says_why(client, bob, subscription, stamp,
                                                                                  view):
    # Finding 3 of issue 21: a member's ?before= of these dates was a 500 (OverflowError converting them to UTC).
    rows = add_deliveries(subscription, 2) + add_deliveries(subscription, 1, state=Delivery.State.PENDING)
    client.force_login(bob)
    cursor = base64.urlsafe_b64encode(f"{stamp}|{uuid.uuid4().hex}".encode()).decode()

    response = client.get(reverse(view, args=[subscription.id]), {"before": cursor})

    assert response.status_code == 200
    page = response.content.decode()
    assert set(event_links(page)) == {str(d.id) for d in rows}
    assert ("This page link points outside the dates the Delivery Log holds. Showing the newest deliveries."
            in page)
    assert "data-refresh=" in page  # refreshed like the first page it is


def test_older_links_walk_every_delivery_once_even_with_equal_timestamps(client, alice, subscription):
    rows = add_deliveries(subscription, PAGE_SIZE * 2 + 7, same_time_every=3)
    client.force_login(alice)
    url = reverse("console:subscription_detail", args=[subscription.id])
    seen, pages = [], 0
    while url:
        page = client.get(url).content.decode()
        seen += event_links(page)
        pages += 1
        older = re.search(r'href="([^"]+)" rel="next">Older</a>', page)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert pages == 3
    assert len(seen) == len(set(seen)) == len(rows)
    expected = sorted(rows, key=lambda d: (d.created_at, d.id.hex), reverse=True)
    assert seen == [str(d.id) for d in expected]


def test_log_at_100000_deliveries_costs_a_bounded_number_of_queries(
    client, alice, org, subscription, django_assert_max_num_queries
):
    add_deliveries(subscription, 100_000, same_time_every=2)
    add_deliveries(subscription, 500, state=Delivery.State.FAILED, activity_type="order.created")
    # Another webhook's rows share the table and index, and must not leak in.
    other, _ = make_subscription(org, url="https://other.example.com/in")
    add_deliveries(other, 1000)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE delivery_delivery")
    client.force_login(alice)
    url = reverse("console:subscription_detail", args=[subscription.id])
    client.get(url)  # warm the session

    # Session, user, membership, webhook, its types, ONE page of the log, creator, trail; its health (record,
    # sender slots) and its charts (counts per hour; p50 and p95 of the range's attempts).
    with django_assert_max_num_queries(12), CaptureQueriesContext(connection) as first:
        page = client.get(url).content.decode()
    assert len(event_links(page)) == PAGE_SIZE
    older = re.search(r'href="([^"]+)" rel="next">Older</a>', page).group(1).replace("&amp;", "&")
    for params in (older, url + "?state=failed", url + "?type=order.created&state=failed"):
        with django_assert_max_num_queries(12):
            assert len(event_links(client.get(params).content.decode())) == PAGE_SIZE
    # Nothing counts the log: the charts read their summaries and roll-up, and the one count over the deliveries
    # is what the endpoint lost, a range of the failed deliveries' index counted to LOST_COUNT_CAP + 1 at most.
    counts = [q["sql"] for q in first.captured_queries
              if "COUNT(" in q["sql"].upper() and "delivery_delivery" in q["sql"]]
    assert counts and all(f"LIMIT {LOST_COUNT_CAP + 1}" in sql for sql in counts), counts

    # The page's query is served by the delivery_log index, not a scan and sort.
    deep = Delivery.objects.filter(subscription=subscription).order_by("-created_at", "-id")[60_000]
    plan = delivery_log_queryset(subscription=subscription, before=(deep.created_at, deep.id))[:PAGE_SIZE + 1].explain()
    assert "delivery_log" in plan, plan
    if connection.vendor == "postgresql":
        # The scan starts at the cursor (an index bound), rather than filtering every newer row.
        index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
        assert "created_at <=" in index_cond, plan
    assert Subscription.objects.count() == 2
