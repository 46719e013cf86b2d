"""A failing endpoint in Debian's Chromium, on a desktop (1366x900) and a phone (390x844).

Its card and its detail page say how it is doing (breaker open, since when,
after how many failures, the last error, the next probe), why each delivery
waits, and draw its charts; each page fits the viewport, passes axe-core with
no violation and makes no console error (a CSP violation is one). Screenshots:
docs/screenshots/50-*.png to 53-*.png.
"""

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conftest import make_subscription

# (open_page is a fixture of console/tests/conftest.py.)
from console.tests.test_browser_console import BOTH_SIZES, DESKTOP, check, detail_url
from delivery.attempt_hours import attempt_hours_rebuild
from delivery.models import Attempt, Delivery, Event
from delivery.tests.test_health_view import failing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ERP = "https://erp.example.com/webhooks/groweriq/in"


def _delivery(subscription, *, at, state, attempts=0, next_attempt_at=None, code=None, error=""):
    event = Event.objects.create(organisation=subscription.organisation, activity_type="lot.created",
                                 body='{"id": "evt", "data": {"lot_id": "LOT-1"}}', created_at=at)
    return Delivery(id=uuid.uuid4(), event=event, subscription=subscription, activity_type="lot.created",
                    state=state, attempt_count=attempts, created_at=at, next_attempt_at=next_attempt_at,
                    last_status_code=code, last_error=error,
                    completed_at=at if state == Delivery.State.SUCCEEDED else None)


@pytest.fixture
def failing_endpoint(org, alice):
    """acme's ERP endpoint: a day of answers, failing for the last three hours, its breaker open; and two others."""
    make_subscription(org, url="https://warehouse.example.com/in", created_by=alice)
    subscription, _ = make_subscription(org, url=ERP, activity_types=["lot.created"], created_by=alice,
                                        description="ERP integration, north greenhouse")
    now = timezone.now()
    deliveries, attempts = [], []
    for hours_ago in range(24 * 7, 0, -1):
        if hours_ago > 24 and hours_ago % 6:
            continue  # the week before yesterday: a few hours only
        at = now - timedelta(hours=hours_ago, minutes=-5)
        broken = hours_ago <= 3
        for i in range(2 + hours_ago % 4):
            d = _delivery(subscription, at=at, attempts=1,
                          state=Delivery.State.PENDING if broken else Delivery.State.SUCCEEDED,
                          next_attempt_at=now + timedelta(minutes=30) if broken else None,
                          code=503 if broken and i % 2 == 0 else (None if broken else 200),
                          error=("HTTP 503" if i % 2 == 0 else "Timed out after 10 s") if broken else "")
            deliveries.append(d)
            attempts.append(Attempt(delivery=d, number=1, url=ERP, started_at=at + timedelta(seconds=i),
                                    duration_ms=10_000 if broken and i % 2 else 60 + 35 * i + hours_ago % 7 * 20,
                                    status_code=d.last_status_code,
                                    error_kind="timeout" if broken and i % 2 else "",
                                    error_message="Timed out after 10 s" if broken and i % 2 else ""))
    waiting = [_delivery(subscription, at=now - timedelta(minutes=m), state=Delivery.State.PENDING,
                         next_attempt_at=now - timedelta(minutes=m)) for m in range(1, 7)]
    Delivery.objects.bulk_create(deliveries + waiting)
    Attempt.objects.bulk_create(attempts)
    attempt_hours_rebuild(subscription_ids=[subscription.id])  # the charts' roll-up, as the sender keeps it
    failing(subscription, failures=12, since=now - timedelta(hours=3), open_until=now + timedelta(minutes=20), url=ERP)
    return {"subscription": subscription, "waiting": waiting}


@BOTH_SIZES
def test_a_failing_endpoints_card_and_detail_page_say_why_it_waits(
        site, failing_endpoint, open_page, viewport, suffix):  # noqa: F811 - open_page is the imported fixture
    subscription = failing_endpoint["subscription"]
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/")
    card = page.locator(".card", has_text=ERP)
    expect(card.get_by_text("Breaker open", exact=True)).to_be_visible()
    expect(card).to_contain_text("after 12 consecutive failures; last error:")
    expect(card).to_contain_text("Next probe at")
    expect(page.locator(".card", has_text="warehouse.example.com").get_by_text("Healthy")).to_be_visible()
    check(page, f"50-health-cards{suffix}")

    card.get_by_role("link", name=ERP).click()
    health = page.locator(".facts .health")
    expect(health).to_contain_text("Breaker open")
    expect(health).to_contain_text("Deliveries wait, using up no retry.")
    log = page.locator("#delivery-log")
    breaker = "Waiting for the endpoint's breaker: next probe at"
    expect(log.locator(".log__waits li", has_text=breaker)).to_have_count(1)  # said once, above the rows
    expect(log.locator("tbody .log__waiting", has_text=breaker)).to_have_count(6)
    expect(log.get_by_text("Waiting for its retry at").first).to_be_visible()
    charts = page.locator("#charts")
    expect(charts.locator("svg.chart__svg")).to_have_count(2)
    expect(charts.get_by_role("group", name="Attempts per hour by outcome, last 24 hours")).to_be_visible()
    assert charts.locator("rect.chart__bar--ok").count() > 10 and charts.locator("rect.chart__bar--http").count() == 3
    check(page, f"51-health-detail{suffix}")

    charts.get_by_role("link", name="7 days").click()
    expect(page.locator("#charts [aria-current=page]")).to_have_text("7 days")
    expect(charts.get_by_role("img", name="Attempt latency per hour, p50 and p95, last 7 days")).to_be_visible()
    if viewport == DESKTOP:  # the 7 days' 168 hours: each bar wide enough to see
        widths = charts.locator("rect.chart__bar").evaluate_all("bs => bs.map(b => b.getBoundingClientRect().width)")
        assert len(widths) > 10 and min(widths) >= 3, f"7-day bars too thin: {min(widths)} px"
    # By keyboard: Tab from the range links reaches the first hour with attempts; its name has the counts.
    charts.get_by_role("link", name="7 days").focus()
    first = charts.locator("[data-chart-hour]").first
    for _ in range(10):
        page.keyboard.press("Tab")
        if first.evaluate("h => h === document.activeElement"):
            break
    expect(first).to_be_focused()
    expect(first).to_have_accessible_name(re.compile(r"^\d+ \w+ 2026, \d\d:00 UTC: \d+ attempts?, \d+ succeeded"))
    page.keyboard.press("End")  # the arrow keys and End move hour by hour: the newest hour, with the 503s
    last = charts.locator("[data-chart-hour]").last
    expect(last).to_be_focused()
    expect(last).to_have_accessible_name(re.compile(r"\d+ failed with an HTTP status"))
    check(page, f"92-chart-hour-focused{suffix}", full_page=False)
    charts.get_by_text("The numbers, hour by hour").click()
    expect(charts.locator("table.table--chart tbody tr").first).to_be_visible()
    check(page, f"52-health-detail-7d{suffix}")

    waiting = failing_endpoint["waiting"][0]
    page.goto(f"{detail_url(site, subscription)}deliveries/{waiting.id}/")
    expect(page.get_by_text("No attempt yet. Waiting for the endpoint's breaker: next probe at")).to_be_visible()
    check(page, f"53-health-delivery{suffix}")


@BOTH_SIZES
def test_with_42_webhooks_the_broken_ones_lead_page_one_and_the_header_says_the_health(
        site, org, open_page, viewport, suffix):  # noqa: F811 - open_page is the imported fixture
    """Bad state: the two broken webhooks are the oldest of 42 (newest first would put them on page 2)."""
    from console.tests.test_views_list import broken_among_many

    made = broken_among_many(org)
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/")
    cards = page.locator(".card")
    expect(cards).to_have_count(30)
    expect(cards.nth(0)).to_contain_text(made[0].url)
    expect(cards.nth(0).locator(".card__head .badge")).to_have_text("Breaker open")
    expect(cards.nth(1)).to_contain_text(made[1].url)
    expect(cards.nth(1).locator(".card__head .badge")).to_have_text("Failing")
    expect(cards.nth(2).locator(".card__head .badge")).to_have_text("Healthy")
    expect(page.get_by_label("Sort by")).to_have_value("broken")
    check(page, f"54-list-broken-first{suffix}")

    page.get_by_label("Health").select_option("failing")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".card")).to_have_count(1)
    expect(page.get_by_text("1–1 of 1 webhook")).to_be_visible()
    check(page, f"55-list-health-filter{suffix}")

    page.goto(site.url + "/administration/webhooks/")
    page.locator(".card").nth(0).get_by_role("link", name=made[0].url).click()
    expect(page.locator(".page-head .badge")).to_have_text("Breaker open")
    expect(page.locator(".page-head .badge")).to_be_in_viewport()
    check(page, f"56-detail-header-health{suffix}")


@BOTH_SIZES
def test_an_endpoint_that_never_succeeded_says_no_success_yet(
        site, org, alice, open_page, viewport, suffix):  # noqa: F811 - open_page is the imported fixture
    """Bad state: seven deliveries failed for good, the breaker cleared (as by Resume), not one success."""
    subscription, _ = make_subscription(org, url=ERP, created_by=alice)
    now = timezone.now()
    Delivery.objects.bulk_create([_delivery(subscription, at=now - timedelta(minutes=m), state=Delivery.State.FAILED,
                                            attempts=8, code=500, error="HTTP 500") for m in range(1, 8)])
    page = open_page(viewport)
    page.goto(detail_url(site, subscription))
    expect(page.locator(".page-head .badge")).to_have_text("No success yet")
    expect(page.locator(".facts .health")).to_contain_text("Deliveries were attempted and none has succeeded yet")
    expect(page.locator(".facts .health")).not_to_contain_text("Healthy")
    check(page, f"57-detail-no-success{suffix}")
