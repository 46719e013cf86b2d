"""The pages say how an endpoint is doing and why its deliveries wait; the detail page draws its charts."""

import html as html_lib
import re
from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from delivery import health
from delivery.models import Attempt, Delivery, EndpointHealth
from delivery.tasks import send_endpoint
from delivery.tests.test_health_view import attempt, deliver, failing
from subscriptions.activity import record_activity
from subscriptions.services import subscription_pause

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("web_settings")]


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """The test runs the sender itself: wake-ups publish nothing."""
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)


def detail_page(client, subscription, **params) -> str:
    response = client.get(reverse("console:subscription_detail", args=[subscription.id]), params)
    assert response.status_code == 200
    return response.content.decode()


def text_of(html: str) -> str:
    """Return the page's words as read: inline tags dropped, other tags a space, spaces squeezed."""
    html = re.sub(r"</?(span|time|a|strong|code)\b[^>]*>", "", html)
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_with_an_open_breaker_the_pages_say_why_its_deliveries_wait(client, org, alice, receiver, monkeypatch,
                                                                    settings):
    """Done-when of issue 13: a failing endpoint's page states why its deliveries wait."""
    monkeypatch.setattr(health, "BREAKER_THRESHOLD", 3)
    settings.WEBHOOKS_RETRY_SCHEDULE = [600, 600, 600]
    subscription, _ = make_subscription(org, url=receiver.url, created_by=alice)
    receiver.default = 503  # bad input: the endpoint fails every request
    for i in range(5):
        record_activity(organisation=org, activity_type="lot.created", data={"n": i})
    assert send_endpoint(str(subscription.id)) == 3  # the breaker opens after the third failure
    record = EndpointHealth.objects.get(subscription=subscription)
    assert record.open_until is not None
    never_sent = Delivery.objects.filter(subscription=subscription, attempt_count=0)
    assert never_sent.count() == 2
    last_failure = Attempt.objects.filter(delivery__subscription=subscription).order_by("-started_at").first()

    client.force_login(alice)
    page = text_of(detail_page(client, subscription))
    assert "Breaker open" in page
    stamp = last_failure.started_at.strftime("%-d %b %Y, %H:%M")
    since = record.failing_since.strftime("%-d %b %Y, %H:%M")
    assert (f"Open since {stamp} UTC, after 3 consecutive failures (failing since {since} UTC); "
            "last error: HTTP 503.") in page
    assert f"Next probe at {record.open_until:%-d %b %Y, %H:%M} UTC." in page
    probe_at = f"{record.open_until:%-d %b %Y, %H:%M:%S} UTC"
    # Said once above the log, then in each of the two rows' words for a screen reader (on screen: "Waiting (n)").
    assert page.count(f"Waiting for the endpoint's breaker: next probe at {probe_at}") == 1 + 2
    assert page.count("Waiting for its retry at") == 3  # the three that failed have their retry later

    cards = text_of(client.get(reverse("console:subscription_list")).content.decode())
    assert "Breaker open" in cards and "after 3 consecutive failures; last error: HTTP 503" in cards

    one = never_sent.first()
    delivery_page = text_of(client.get(
        reverse("console:delivery_detail", args=[subscription.id, one.id])).content.decode())
    assert f"No attempt yet. Waiting for the endpoint's breaker: next probe at {probe_at}." in delivery_page
    assert "Waiting for Waiting for the endpoint's breaker" in delivery_page  # the facts' row, then its text
    assert "after 3 consecutive failures" in delivery_page


def test_the_card_says_failing_paused_by_whom_and_healthy(client, org, alice):
    healthy, _ = make_subscription(org, url="https://ok.example.com/in")
    flaky, _ = make_subscription(org, url="https://flaky.example.com/in")
    paused, _ = make_subscription(org, url="https://paused.example.com/in")
    now = timezone.now()
    attempt(deliver(flaky, attempts=1), at=now, status_code=None, error_kind="timeout",
            error_message="No answer within 10 s")
    failing(flaky, failures=2, since=now - timedelta(minutes=3))
    subscription_pause(subscription=paused, by=alice)
    client.force_login(alice)
    html = client.get(reverse("console:subscription_list")).content.decode()
    cards = {m.group(1): text_of(m.group(0)) for m in re.finditer(r'<li class="card.*?href="[^"]+">([^<]+)</a>.*?</li>',
                                                                   html, re.S)}
    assert "Healthy" in cards[healthy.url]
    assert "Failing 2 consecutive failures since" in cards[flaky.url]
    assert "last error: No answer within 10 s." in cards[flaky.url]
    assert "Paused by alice." in cards[paused.url] and "Healthy" not in cards[paused.url]
    table = text_of(client.get(reverse("console:subscription_list"), {"view": "table"}).content.decode())
    assert "Failing 2 consecutive failures" in table


def test_a_capped_endpoint_says_all_senders_are_busy(client, org, alice):
    from delivery import slots
    from delivery.tests.test_health_view import hold_slots

    subscription, _ = make_subscription(org)
    hold_slots(slots.endpoint_scope(subscription.id), slots.ENDPOINT_SENDERS,
               until=timezone.now() + timedelta(seconds=30))
    deliver(subscription)
    client.force_login(alice)
    page = text_of(detail_page(client, subscription))
    assert f"At capacity All {slots.ENDPOINT_SENDERS} senders of this endpoint are busy" in page
    assert (f"Due now: waiting for a free sender (all {slots.ENDPOINT_SENDERS} of this endpoint's senders are busy)"
            in page)


def test_detail_charts_are_svg_with_a_title_a_summary_and_a_range_toggle(client, org, alice):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    # Both in the last full UTC hour (a chart's hours are UTC hours): "5 and 4 minutes ago" fell in two
    # hours when the suite ran in the first minutes of an hour.
    last_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    d = deliver(subscription, attempts=3, created_at=now - timedelta(days=3))
    attempt(d, at=last_hour + timedelta(minutes=10), status_code=200, duration_ms=140)
    attempt(d, at=last_hour + timedelta(minutes=11), status_code=502, duration_ms=60)
    attempt(d, at=now - timedelta(days=3), status_code=200, duration_ms=900)  # in 7 days, not in 24 hours
    client.force_login(alice)

    html = detail_page(client, subscription)
    charts = html[html.index('id="charts"'):html.index('id="delivery-log"')]
    # The outcomes chart is a group of focusable hours (one img each, named with its counts); latency an img.
    assert charts.count('<svg class="chart__svg"') == 2 and charts.count('role="group"') == 1
    assert charts.count('class="chart__hour" role="img"') == 1 and charts.count('role="img"') == 2
    assert ": 2 attempts, 1 succeeded, 1 failed with an HTTP status\" tabindex=\"0\"" in charts
    assert '<title id="chart-outcomes-title">Attempts per hour by outcome, last 24 hours</title>' in charts
    assert "2 attempts, 1 succeeded, 1 failed with an HTTP status and 0 got no answer" in charts
    assert 'aria-describedby="chart-outcomes-summary chart-outcomes-keys"' in charts
    assert 'id="chart-outcomes-summary"' in charts
    assert 'aria-current="page">24 hours</a>' in charts and 'href="?range=7d#charts"' in charts
    assert "style=" not in charts and "<script" not in charts  # the CSP allows neither
    assert charts.count('class="chart__bar chart__bar--ok"') == 1
    assert "<td data-label=\"p95\">140 ms</td>" in charts

    week = detail_page(client, subscription, range="7d")
    charts = week[week.index('id="charts"'):week.index('id="delivery-log"')]
    assert 'aria-current="page">7 days</a>' in charts
    assert "3 attempts, 2 succeeded" in charts and "900 ms" in charts
    assert '<input type="hidden" name="range" value="7d">' in week  # the log's search keeps the range
    assert detail_page(client, subscription, range="nonsense").count('aria-current="page">24 hours</a>') == 1


def test_a_member_sees_health_and_charts_too(client, org, bob):
    subscription, _ = make_subscription(org)
    client.force_login(bob)
    page = text_of(detail_page(client, subscription))
    assert "Healthy No failed attempt since its last success." in page
    assert "Attempts per hour by outcome, last 24 hours" in page
