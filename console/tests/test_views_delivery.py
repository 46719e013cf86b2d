"""A delivery opened from the log: every attempt in full, and Redeliver."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Attempt, Delivery
from subscriptions.activity import record_activity

pytestmark = pytest.mark.usefixtures("web_settings")


@pytest.fixture
def subscription(org):
    subscription, _ = make_subscription(org, activity_types=["lot.created"])
    return subscription


def finished_delivery(org, *, state=Delivery.State.FAILED):
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-<1>"})
    delivery = Delivery.objects.get(event=event)
    now = timezone.now()
    Attempt.objects.create(
        delivery=delivery, number=1, url="https://hooks.example.com/in", started_at=now, duration_ms=812,
        request_headers={"webhook-id": event.webhook_id, "webhook-timestamp": "1795819575",
                         "webhook-signature": "v1,c2lnbmF0dXJlLW9uZQ=="},
        status_code=500, response_headers={"X-Trace": "abc-123"}, response_body='{"error":"boom"}',
    )
    Attempt.objects.create(
        delivery=delivery, number=2, url="https://hooks.example.com/in", started_at=now, duration_ms=10_000,
        request_headers={"webhook-signature": "v1,c2lnbmF0dXJlLXR3bw=="},
        error_kind=Attempt.ErrorKind.TIMEOUT, error_message="No answer within 10 s.",
    )
    Delivery.objects.filter(id=delivery.id).update(state=state, attempt_count=2, completed_at=now,
                                                   last_error="No answer within 10 s.")
    delivery.refresh_from_db()
    return delivery


def detail_url(delivery):
    return reverse("console:delivery_detail", args=[delivery.subscription_id, delivery.id])


def redeliver_url(delivery):
    return reverse("console:delivery_redeliver", args=[delivery.subscription_id, delivery.id])


def test_each_attempt_shows_request_and_response(client, org, alice, subscription):
    delivery = finished_delivery(org)
    client.force_login(alice)
    page = client.get(detail_url(delivery)).content.decode()
    assert "Attempt 1" in page and "Attempt 2" in page
    assert "v1,c2lnbmF0dXJlLW9uZQ==" in page and "v1,c2lnbmF0dXJlLXR3bw==" in page  # signatures, never the secret
    assert "whsec_" not in page
    assert "HTTP 500" in page and "X-Trace" in page and "abc-123" in page
    assert "&quot;error&quot;: &quot;boom&quot;" in page  # the response body, pretty-printed and escaped
    assert "812 ms" in page and "10000 ms" in page
    assert "Timed out" in page and "No answer within 10 s." in page
    body = json.loads(delivery.event.body)
    assert "&quot;lot_id&quot;: &quot;LOT-&lt;1&gt;&quot;" in page  # the request body, escaped
    assert body["id"] in page
    assert ">Redeliver</button>" in page


def test_redeliver_sends_a_finished_delivery_again(client, org, alice, subscription):
    delivery = finished_delivery(org)
    client.force_login(alice)
    response = client.post(redeliver_url(delivery), follow=True)
    assert "Redelivering: the same event id" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING and delivery.schedule_offset == 2


def test_redeliver_of_an_unfinished_delivery_changes_nothing(client, org, alice, subscription):
    """Bad input: Redeliver on a delivery still pending (a stale page, or a forged POST)."""
    event = record_activity(organisation=org, activity_type="lot.created", data={})
    delivery = Delivery.objects.get(event=event)
    client.force_login(alice)
    page = client.get(detail_url(delivery)).content.decode()
    assert "disabled>Redeliver" in page and "No attempt yet" in page
    response = client.post(redeliver_url(delivery), follow=True)
    assert "still in progress" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING and delivery.schedule_offset == 0


def test_member_sees_attempts_without_redeliver(client, org, bob, subscription):
    delivery = finished_delivery(org)
    client.force_login(bob)
    page = client.get(detail_url(delivery)).content.decode()
    assert "Attempt 2" in page and "Redeliver" not in page
    assert client.post(redeliver_url(delivery)).status_code == 403
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED


def test_redeliver_waits_for_resume_when_paused(client, org, alice, subscription):
    """Bad input: Redeliver on a paused webhook (a forged POST past the disabled button)."""
    delivery = finished_delivery(org)
    client.force_login(alice)
    client.post(reverse("console:subscription_pause", args=[subscription.id]))
    page = client.get(detail_url(delivery)).content.decode()
    assert "disabled>Redeliver" in page and "Resume the webhook to redeliver." in page
    response = client.post(redeliver_url(delivery), follow=True)
    assert "This webhook is paused: resume it to redeliver." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED
