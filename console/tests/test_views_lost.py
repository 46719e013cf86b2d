"""The banner of deliveries that failed for good, on the webhook's card and page, with the way to retry them."""

from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from console.tests.test_views_health import text_of
from delivery.models import Delivery
from subscriptions.activity import record_activity
from subscriptions.models import Subscription

pytestmark = pytest.mark.usefixtures("web_settings")


def lose(subscription, count, *, hours_ago=1):
    """Record `count` events and leave their deliveries failed for good, created hours_ago, hours_ago-1, ..."""
    now = timezone.now()
    for n in range(count):
        event = record_activity(organisation=subscription.organisation, activity_type="lot.created", data={"n": n})
        Delivery.objects.filter(event=event, subscription=subscription).update(
            state=Delivery.State.FAILED, attempt_count=8, last_status_code=500, last_error="HTTP 500",
            created_at=now - timedelta(hours=hours_ago, minutes=-n), completed_at=now)


def test_the_page_and_the_card_say_how_many_failed_for_good_since_when_and_link_to_retry(client, org, alice):
    subscription, _ = make_subscription(org, url="https://erp.example.com/in")
    lose(subscription, 7, hours_ago=3)
    lose(subscription, 1, hours_ago=24 * 8)  # bad input: older than the banner's week, not counted
    first = Delivery.objects.filter(subscription=subscription, created_at__gte=timezone.now() - timedelta(days=7)) \
        .order_by("created_at").first().created_at.astimezone(UTC)
    client.force_login(alice)
    page = text_of(client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode())
    assert f"7 deliveries failed for good since {first:%-d %b %Y, %H:%M} UTC: every retry was used." in page
    html = client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    link = f'{reverse("console:subscription_recover", args=[subscription.id])}?since={first:%Y-%m-%dT%H:%M}'
    assert f'href="{link}">Retry failed deliveries…</a>' in html
    confirm = client.get(link).content.decode()
    assert "<strong>7 failed deliveries</strong>" in confirm
    cards = text_of(client.get(reverse("console:subscription_list")).content.decode())
    assert "7 deliveries failed for good since" in cards
    table = client.get(reverse("console:subscription_list"), {"view": "table"}).content.decode()
    assert '<strong class="lost-count">7 failed for good</strong>' in table


def test_no_banner_without_loss_and_none_for_a_member_to_act_on(client, org, alice, bob):
    """Bad input: a member (no Retry link), and a webhook whose failed deliveries were sent again."""
    subscription, _ = make_subscription(org)
    client.force_login(alice)
    assert "failed for good" not in client.get(reverse("console:subscription_detail", args=[subscription.id])
                                                ).content.decode()
    lose(subscription, 2)
    client.force_login(bob)
    page = client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "2 deliveries failed for good" in page and "Retry failed deliveries…" not in page
    Delivery.objects.filter(subscription=subscription).update(state=Delivery.State.PENDING, completed_at=None)
    assert "failed for good" not in client.get(reverse("console:subscription_list")).content.decode()
    Subscription.objects.filter(id=subscription.id).update(state=Subscription.State.PAUSED)
    lose(subscription, 1)
    client.force_login(alice)
    assert "Resume the webhook to retry them." in client.get(
        reverse("console:subscription_detail", args=[subscription.id])).content.decode()


def test_past_the_cap_every_page_says_more_than_and_the_confirmation_still_counts_them(client, org, alice,
                                                                                       monkeypatch):
    """The banner counts to LOST_COUNT_CAP (3 here, to keep the test small): past it, "More than 3"."""
    monkeypatch.setattr("delivery.health_view.LOST_COUNT_CAP", 3)
    many, _ = make_subscription(org, url="https://many.example.com/in")
    lose(many, 4, hours_ago=3)
    three, _ = make_subscription(org, url="https://three.example.com/in")
    lose(three, 3, hours_ago=3)
    client.force_login(alice)
    page = text_of(client.get(reverse("console:subscription_detail", args=[many.id])).content.decode())
    assert "More than 3 deliveries failed for good since" in page
    assert "3 deliveries failed for good since" in text_of(
        client.get(reverse("console:subscription_detail", args=[three.id])).content.decode())
    cards = text_of(client.get(reverse("console:subscription_list")).content.decode())
    assert "More than 3 deliveries failed for good since" in cards
    assert cards.count("More than 3") == 1 and cards.count("3 deliveries failed for good since") == 2
    table = client.get(reverse("console:subscription_list"), {"view": "table"}).content.decode()
    assert '<strong class="lost-count">More than 3 failed for good</strong>' in table
    assert '<strong class="lost-count">3 failed for good</strong>' in table
    since = f"{timezone.now() - timedelta(days=1):%Y-%m-%dT%H:%M}"
    confirm = client.get(reverse("console:subscription_recover", args=[many.id]), {"since": since}).content.decode()
    assert "<strong>4 failed deliveries</strong>" in confirm and "Retry 4 failed deliveries" in confirm


def test_the_retry_confirmation_counts_to_the_bulk_limit_then_says_more_than(client, org, alice, monkeypatch):
    """Bad input: more failed deliveries than the confirmation counts; the POST still sends them all."""
    monkeypatch.setattr("console.subscription_views.BULK_LIMIT", 2)
    subscription, _ = make_subscription(org)
    lose(subscription, 3, hours_ago=3)
    client.force_login(alice)
    url = reverse("console:subscription_recover", args=[subscription.id])
    since = f"{timezone.now() - timedelta(days=1):%Y-%m-%dT%H:%M}"
    confirm = text_of(client.get(url, {"since": since}).content.decode())
    assert "More than 2 failed deliveries created since" in confirm and "Retry them all" in confirm
    client.post(url, {"since": since})
    assert not Delivery.objects.filter(subscription=subscription, state=Delivery.State.FAILED).exists()
