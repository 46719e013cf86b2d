"""The Webhooks page at scale: search, filter by state, sort, cards or a compact table, and pages."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import ROOT, make_subscription
from console.list_views import PAGE_SIZE
from subscriptions.activity import record_activity
from subscriptions.models import Subscription

pytestmark = pytest.mark.usefixtures("web_settings")

LIST = reverse("console:subscription_list")


def urls_on(page):
    return re.findall(r'href="/administration/webhooks/[0-9a-f-]+/"[^>]*>(https://[^<]+)</a>', page)


@pytest.fixture
def many(org):
    """Five webhooks created a minute apart: two paused, one with a description to search."""
    made = []
    for i, host in enumerate(["delta", "alpha", "echo", "charlie", "bravo"]):
        s, _ = make_subscription(org, url=f"https://{host}.example.com/in",
                                 description="ERP bridge" if host == "echo" else "")
        Subscription.objects.filter(id=s.id).update(created_at=timezone.now() - timedelta(minutes=10 - i))
        made.append(s)
    Subscription.objects.filter(url__in=["https://alpha.example.com/in", "https://charlie.example.com/in"]).update(
        state=Subscription.State.PAUSED)
    return made


def test_search_matches_url_or_description(client, alice, many):
    client.force_login(alice)
    assert urls_on(client.get(LIST, {"q": "ALPHA"}).content.decode()) == ["https://alpha.example.com/in"]
    assert urls_on(client.get(LIST, {"q": "erp"}).content.decode()) == ["https://echo.example.com/in"]
    none = client.get(LIST, {"q": "zulu"}).content.decode()
    assert urls_on(none) == [] and "No webhooks match this search." in none and "No webhooks yet" not in none


def test_filter_by_state_and_sort(client, alice, many):
    client.force_login(alice)
    paused = client.get(LIST, {"state": "paused", "sort": "url"}).content.decode()
    assert urls_on(paused) == ["https://alpha.example.com/in", "https://charlie.example.com/in"]
    assert urls_on(client.get(LIST, {"sort": "oldest"}).content.decode())[0] == "https://delta.example.com/in"
    assert urls_on(client.get(LIST).content.decode())[0] == "https://bravo.example.com/in"  # newest first


def test_sort_by_last_delivery_puts_the_latest_first_and_the_silent_last(client, org, alice, many):
    echo = Subscription.objects.get(url="https://echo.example.com/in")
    echo.activity_types.update(activity_type="order.created")
    record_activity(organisation=org, activity_type="order.created", data={})
    client.force_login(alice)
    assert urls_on(client.get(LIST, {"sort": "last"}).content.decode())[0] == "https://echo.example.com/in"


def test_bad_list_parameters_fall_back_to_the_defaults(client, alice, many):
    """Bad input: unknown state, sort, view and page."""
    client.force_login(alice)
    response = client.get(LIST, {"state": "exploded", "sort": "sideways", "view": "hologram", "page": "-3"})
    assert response.status_code == 200 and len(urls_on(response.content.decode())) == 5


def test_table_view_shows_url_state_success_last_delivery_and_types(client, org, alice, many):
    record_activity(organisation=org, activity_type="lot.created", data={})
    client.force_login(alice)
    page = client.get(LIST, {"view": "table"}).content.decode()
    assert '<table class="table table--webhooks">' in page and '<li class="card' not in page
    for header in ("Endpoint URL", "Health", "Deliveries succeeded, last 24 h", "Last delivery", "Activity Types"):
        assert f'<th scope="col">{header}</th>' in page
    assert page.count('class="badge badge--paused">Paused') == 2 and "ERP bridge" in page
    assert page.count("1 type<br>") == 5
    assert page.count("Pending") == 3  # the three active webhooks' last delivery


def test_pages_of_thirty_keep_the_search(client, org, alice, django_assert_max_num_queries):
    for i in range(PAGE_SIZE * 2 + 5):
        make_subscription(org, url=f"https://n{i:03}.example.com/in")
    client.force_login(alice)
    client.get(LIST)
    with django_assert_max_num_queries(12):
        first = client.get(LIST, {"q": "example", "view": "table", "sort": "url"}).content.decode()
    assert len(urls_on(first)) == PAGE_SIZE and "1–30 of 65 webhooks" in first and "Page 1 of 3" in first
    nxt = re.search(r'href="([^"]+)" rel="next">Next</a>', first).group(1).replace("&amp;", "&")
    assert "q=example" in nxt and "view=table" in nxt and "page=2" in nxt
    last = client.get(LIST + nxt.replace("page=2", "page=3")).content.decode()
    assert urls_on(last)[-1] == "https://n064.example.com/in" and len(urls_on(last)) == 5
    assert 'rel="next"' not in last and 'rel="prev"' in last


def test_a_long_unbroken_description_is_allowed_to_wrap(client, org, alice):
    make_subscription(org, description="x" * 200)
    client.force_login(alice)
    page = client.get(LIST).content.decode()
    assert '<p class="card__description">' + "x" * 200 in page
    css = (ROOT / "static" / "css" / "app.css").read_text()
    rule = re.search(r"\.card__description, \.card__paused \{([^}]*)\}", css).group(1)
    assert "overflow-wrap: anywhere" in rule


def broken_among_many(org, count=42):
    """`count` webhooks created a minute apart; the two oldest are broken (one breaker open, one failing)."""
    from delivery.models import EndpointHealth

    now = timezone.now()
    made = []
    for i in range(count):
        s, _ = make_subscription(org, url=f"https://n{i:03}.example.com/in")
        Subscription.objects.filter(id=s.id).update(created_at=now - timedelta(minutes=count - i))
        made.append(s)
    EndpointHealth.objects.create(subscription=made[0], url=made[0].url, consecutive_failures=5,
                                  failing_since=now - timedelta(hours=1), open_until=now + timedelta(minutes=5))
    EndpointHealth.objects.create(subscription=made[1], url=made[1].url, consecutive_failures=2,
                                  failing_since=now - timedelta(minutes=5))
    return made


def test_with_42_webhooks_the_two_broken_ones_come_first_on_page_one(client, org, alice,
                                                                      django_assert_max_num_queries):
    """Bad state: the two broken webhooks are the oldest, so "newest first" would leave them on page 2."""
    made = broken_among_many(org)
    client.force_login(alice)
    client.get(LIST)
    with django_assert_max_num_queries(12):
        page = client.get(LIST).content.decode()
    assert urls_on(page)[:3] == [made[0].url, made[1].url, made[41].url]  # broken (newest first), then newest
    assert "Breaker open" in page and "Failing" in page
    assert urls_on(client.get(LIST, {"sort": "newest"}).content.decode())[0] == made[41].url
    assert made[0].url not in urls_on(client.get(LIST, {"sort": "newest"}).content.decode())
    table = client.get(LIST, {"view": "table"}).content.decode()
    assert urls_on(table)[:2] == [made[0].url, made[1].url]


def test_filter_and_sort_by_health(client, org, alice):
    made = broken_among_many(org, count=5)
    Subscription.objects.filter(id=made[4].id).update(state=Subscription.State.PAUSED)
    client.force_login(alice)
    assert urls_on(client.get(LIST, {"health": "breaker_open"}).content.decode()) == [made[0].url]
    assert urls_on(client.get(LIST, {"health": "failing"}).content.decode()) == [made[1].url]
    assert urls_on(client.get(LIST, {"health": "paused"}).content.decode()) == [made[4].url]
    healthy = client.get(LIST, {"health": "healthy"}).content.decode()
    assert urls_on(healthy) == [made[3].url, made[2].url] and "Clear</a>" in healthy
    assert urls_on(client.get(LIST, {"sort": "health"}).content.decode()) == [
        made[0].url, made[1].url, made[4].url, made[3].url, made[2].url]


def test_the_success_rate_says_it_counts_deliveries(client, org, alice, many):
    record_activity(organisation=org, activity_type="lot.created", data={})
    Subscription.objects.filter(deliveries__isnull=False).first().deliveries.update(attempt_count=3)
    client.force_login(alice)
    page = client.get(LIST).content.decode()
    assert "Deliveries succeeded, last 24 h" in page and "of 1 delivery attempted" in page
