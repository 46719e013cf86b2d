"""Try now: an open breaker's probe sent at once from the webhook's page, through the one sending path."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from console.tests.test_views_health import text_of
from delivery.models import Attempt, Delivery, EndpointHealth
from subscriptions.activity import record_activity
from subscriptions.models import Subscription

pytestmark = pytest.mark.usefixtures("web_settings")


@pytest.fixture
def broken(org, receiver, settings):
    """acme's webhook to the real receiver: three deliveries due, its breaker open for five more minutes."""
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    subscription, _ = make_subscription(org)
    Subscription.objects.filter(id=subscription.id).update(url=receiver.url)
    subscription.refresh_from_db()
    for n in range(3):
        record_activity(organisation=org, activity_type="lot.created", data={"n": n})
    now = timezone.now()
    EndpointHealth.objects.create(subscription=subscription, url=receiver.url, consecutive_failures=5,
                                  failing_since=now - timedelta(hours=1), open_until=now + timedelta(minutes=5))
    return subscription


def try_now(client, subscription):
    return client.post(reverse("console:subscription_try_now", args=[subscription.id]), follow=True)


def test_the_probe_goes_at_once_and_a_success_closes_the_breaker(client, alice, broken, receiver):
    client.force_login(alice)
    detail = client.get(reverse("console:subscription_detail", args=[broken.id])).content.decode()
    assert "Send the next delivery now…" in detail
    waiting = Delivery.objects.filter(subscription=broken).first()
    assert "Send the next delivery now…" in client.get(
        reverse("console:delivery_detail", args=[broken.id, waiting.id])).content.decode()
    confirm = client.get(reverse("console:subscription_try_now", args=[broken.id])).content.decode()
    assert "Its next probe would go at" in confirm and "one request" in confirm
    page = text_of(try_now(client, broken).content.decode())
    assert len(receiver.received) == 1  # one request: the probe, not the backlog
    probe = Attempt.objects.get()
    assert f"Sent {receiver.received[0].headers['webhook-id']} now: HTTP 200 in" in page
    assert "The breaker is closed; the waiting deliveries are being sent." in page
    assert probe.status_code == 200 and probe.delivery.state == Delivery.State.SUCCEEDED
    assert EndpointHealth.objects.get(subscription=broken).consecutive_failures == 0
    assert Delivery.objects.filter(subscription=broken, state=Delivery.State.PENDING).count() == 2
    assert "Send the next delivery now…" not in page  # the breaker is closed


def test_a_failed_probe_says_so_and_opens_the_breaker_for_longer(client, alice, broken, receiver):
    """Bad answer: the receiver is still broken (503)."""
    receiver.default = 503
    client.force_login(alice)
    page = text_of(try_now(client, broken).content.decode())
    assert len(receiver.received) == 1
    assert "now: HTTP 503 in" in page and "The breaker is open again, for longer" in page
    record = EndpointHealth.objects.get(subscription=broken)
    assert record.consecutive_failures == 6 and record.open_until > timezone.now() + timedelta(seconds=90)
    probe = Attempt.objects.get().delivery
    assert probe.state == Delivery.State.PENDING  # retried later, as any failure
    shown = text_of(client.get(reverse("console:delivery_detail", args=[broken.id, probe.id])).content.decode())
    assert "State Retrying (pending)" in shown  # the fact says what the badge says


def test_nothing_is_tried_on_a_closed_breaker_or_a_paused_webhook(client, alice, broken, receiver):
    """Bad input: Try now posted when there is nothing to try (no breaker open; then paused)."""
    client.force_login(alice)
    EndpointHealth.objects.filter(subscription=broken).update(consecutive_failures=0, open_until=None)
    assert "The breaker of this endpoint is not open" in text_of(try_now(client, broken).content.decode())
    assert "not open" in client.get(reverse("console:subscription_try_now", args=[broken.id])).content.decode()
    EndpointHealth.objects.filter(subscription=broken).update(consecutive_failures=5,
                                                               open_until=timezone.now() + timedelta(minutes=5))
    Subscription.objects.filter(id=broken.id).update(state=Subscription.State.PAUSED)
    assert "This webhook is paused: resume it to send." in text_of(try_now(client, broken).content.decode())
    assert receiver.received == [] and not Attempt.objects.exists()


def test_a_member_cannot_try_now(client, bob, broken, receiver):
    client.force_login(bob)
    assert try_now(client, broken).status_code == 403
    assert "Send the next delivery now" not in client.get(
        reverse("console:subscription_detail", args=[broken.id])).content.decode()
    assert receiver.received == []
