"""What a receiver asks for, in Debian's Chromium on a desktop (1366x900) and a phone (390x844): the form with its
errors, and each "why it waits" of the Delivery Log (rate limit, slow down, in order). Each page fits the viewport,
passes axe-core and makes no console error. Screenshots: docs/screenshots/80-*.png to 84-*.png.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conftest import make_subscription

# (open_page is a fixture of console/tests/conftest.py.)
from console.tests.test_browser_console import BOTH_SIZES, check, detail_url
from console.tests.test_browser_health import _delivery
from delivery.models import Delivery, EndpointPace
from subscriptions.models import Subscription

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ERP = "https://erp.example.com/webhooks/groweriq/in"


def _waiting(subscription, count, *, minutes_ago=10):
    now = timezone.now()
    rows = [_delivery(subscription, at=now - timedelta(minutes=minutes_ago - i), state=Delivery.State.PENDING,
                      next_attempt_at=now - timedelta(minutes=minutes_ago - i)) for i in range(count)]
    Delivery.objects.bulk_create(rows)
    return rows


@BOTH_SIZES
def test_the_form_says_what_is_wrong_with_each_ask_and_saves_nothing_then_saves_them(
        site, org, open_page, viewport, suffix):  # noqa: F811 - open_page is the imported fixture
    """Bad input: a timeout of 0 and a rate limit of "fast"."""
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/create/")
    page.get_by_label("Endpoint URL").fill(ERP)
    page.locator('input[name="activity_types"][value="lot.created"]').check()
    page.get_by_label("Timeout (seconds)").fill("0")
    page.get_by_label("Maximum deliveries per second").fill("fast")
    page.get_by_label("Deliver in order").check()
    page.get_by_role("button", name="Create").click()

    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("The timeout must be at least 1 second.")
    expect(summary).to_contain_text("Enter a whole number from 1 to 1,000, or leave it empty.")
    expect(page.locator("#id_timeout_seconds-error")).to_have_text("The timeout must be at least 1 second.")
    expect(page.get_by_label("Deliver in order")).to_be_checked()  # what was right stays
    assert not Subscription.objects.exists()
    check(page, f"80-controls-errors{suffix}")

    page.get_by_label("Timeout (seconds)").fill("25")
    page.get_by_label("Maximum deliveries per second").fill("20")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Signing secret", exact=True)).to_be_visible()
    subscription = Subscription.objects.get()
    assert (subscription.timeout_seconds, subscription.max_per_second, subscription.ordered) == (25, 20, True)

    page.goto(f"{detail_url(site, subscription)}edit/")
    expect(page.get_by_label("Timeout (seconds)")).to_have_value("25")
    check(page, f"81-controls-form{suffix}")


@BOTH_SIZES
def test_a_limited_endpoints_deliveries_say_they_wait_for_the_rate_limit(
        site, org, alice, open_page, viewport, suffix):  # noqa: F811
    subscription, _ = make_subscription(org, url=ERP, created_by=alice, max_per_second=20)
    _waiting(subscription, 3)
    page = open_page(viewport)
    page.goto(detail_url(site, subscription))
    expect(page.locator(".facts")).to_contain_text("20 deliveries per second at most")
    expect(page.locator("#delivery-log .log__waits li", has_text="(rate limit 20/s)")).to_have_count(1)  # said once
    expect(page.locator("#delivery-log tbody .log__waiting", has_text="(rate limit 20/s)")).to_have_count(3)
    check(page, f"82-wait-rate-limit{suffix}")


@BOTH_SIZES
def test_a_slowed_endpoints_deliveries_say_until_when_the_receiver_asked_us_to_wait(
        site, org, alice, open_page, viewport, suffix):  # noqa: F811
    subscription, _ = make_subscription(org, url=ERP, created_by=alice)
    until = timezone.now() + timedelta(minutes=20)
    EndpointPace.objects.create(subscription=subscription, tat=until.timestamp(), slow_until=until)
    _waiting(subscription, 3)
    page = open_page(viewport)
    page.goto(detail_url(site, subscription))
    slowed = "Waiting: the receiver asked us to slow down until"
    expect(page.locator("#delivery-log .log__waits li", has_text=slowed)).to_have_count(1)
    expect(page.locator("#delivery-log tbody .log__waiting", has_text=slowed)).to_have_count(3)
    check(page, f"83-wait-slow-down{suffix}")


@BOTH_SIZES
def test_an_ordered_endpoints_deliveries_say_which_event_they_wait_for_and_where_order_moved_on(
        site, org, alice, open_page, viewport, suffix):  # noqa: F811
    subscription, _ = make_subscription(org, url=ERP, created_by=alice, ordered=True)
    now = timezone.now()
    failed = _delivery(subscription, at=now - timedelta(hours=2), state=Delivery.State.FAILED, attempts=8,
                       code=503, error="HTTP 503")
    head = _delivery(subscription, at=now - timedelta(minutes=30), state=Delivery.State.PENDING, attempts=2,
                     next_attempt_at=now + timedelta(minutes=4), code=503, error="HTTP 503")
    Delivery.objects.bulk_create([failed, head])
    _waiting(subscription, 3)
    page = open_page(viewport)
    page.goto(detail_url(site, subscription))
    facts = page.locator(".facts")
    expect(facts).to_contain_text("In the order the events were recorded, one at a time")
    expect(facts).to_contain_text("Order moved past a failed event")
    behind = f"Waiting for {head.event.webhook_id} to be delivered"
    expect(page.locator("#delivery-log .log__waits li", has_text=behind)).to_have_count(1)
    expect(page.locator("#delivery-log tbody .log__waiting", has_text=behind)).to_have_count(3)
    check(page, f"84-wait-in-order{suffix}")
