"""Deliveries that fail for good (every retry used) reach the admins in a digest, at most one an hour per endpoint.

The real sending path (conftest.send_now) to the real HTTPS receiver, answering 500; the sender only notes
the loss; the periodic task's service emails through Django's SMTP backend to aiosmtpd on 127.0.0.1.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import EndpointAlert
from alerts.services import LOST_EVERY, LOST_IDS_SHOWN, alerts_lost_send
from alerts.tests.test_alert_emails import _no_broker, _send_all, admins  # noqa: F401 - fixtures (one autouse)
from conftest import make_subscription
from delivery import health
from delivery.models import Delivery
from subscriptions.activity import record_activity

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_retries(monkeypatch, settings):
    """Every failure is final, and the breaker stays closed: each delivery is sent once and lost."""
    monkeypatch.setattr(health, "BREAKER_THRESHOLD", 1000)
    settings.WEBHOOKS_RETRY_SCHEDULE = []


def test_lost_deliveries_are_told_in_one_digest_an_hour_with_the_count_and_first_ids(
        org, admins, receiver, no_retries, smtp_server):  # noqa: F811 - admins is the imported fixture
    subscription, _ = make_subscription(org, url=receiver.url, description="ERP north")
    receiver.default = 500  # bad input: the endpoint fails every request
    events = [record_activity(organisation=org, activity_type="lot.created", data={"n": n}) for n in range(12)]
    _send_all(subscription)
    assert len(receiver.received) == 12
    assert Delivery.objects.filter(subscription=subscription, state=Delivery.State.FAILED).count() == 12
    assert smtp_server.messages == []  # the sender only noted it: the digest is the periodic task's

    assert alerts_lost_send() == 2  # alice and dora; carol turned alerts off, bob is a member
    (message,) = smtp_server.to("alice@acme.test")
    assert message["Subject"] == f"Webhook deliveries lost: 12 to {receiver.url}"
    body = message.get_content()
    assert (f"12 deliveries to the webhook endpoint {receiver.url} (ERP north) of Acme Cultivation "
            "failed for good") in body
    assert sum(e.webhook_id in body for e in events) == LOST_IDS_SHOWN and "12 in all." in body
    assert f"https://webhooks.groweriq.test/administration/webhooks/{subscription.id}/recover/?since=" in body
    assert "at most once an hour per endpoint" in body
    assert alerts_lost_send() == 0  # nothing new to tell

    # One more is lost within the hour: noted, told only once the hour is over, and only it. (The hour
    # passes by moving the first digest and what it told back in time.)
    later = record_activity(organisation=org, activity_type="lot.created", data={"n": 12})
    _send_all(subscription)
    assert len(receiver.received) == 13
    assert alerts_lost_send() == 0
    hour_ago = timezone.now() - LOST_EVERY - timedelta(seconds=1)
    Delivery.objects.filter(event__in=events).update(completed_at=hour_ago - timedelta(minutes=1))
    EndpointAlert.objects.filter(subscription=subscription).update(lost_sent_at=hour_ago)
    assert alerts_lost_send() == 2
    second = smtp_server.to("alice@acme.test")[1]
    assert second["Subject"] == f"Webhook deliveries lost: 1 to {receiver.url}"
    text = second.get_content()
    assert "1 delivery to the webhook endpoint" in text and later.webhook_id in text
    assert not any(e.webhook_id in text for e in events)


def test_a_delivery_that_succeeds_or_will_be_retried_is_not_lost(
        org, admins, receiver, settings, smtp_server):  # noqa: F811 - admins is the imported fixture
    """Bad input: a failure with retries left, and a success; neither is lost."""
    settings.WEBHOOKS_RETRY_SCHEDULE = [300]
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script = [500, 200]
    record_activity(organisation=org, activity_type="lot.created", data={"n": 0})
    record_activity(organisation=org, activity_type="lot.created", data={"n": 1})
    _send_all(subscription)
    assert len(receiver.received) >= 1
    assert not Delivery.objects.filter(state=Delivery.State.FAILED).exists()
    assert alerts_lost_send() == 0 and smtp_server.messages == []
    assert not EndpointAlert.objects.filter(lost_since__isnull=False).exists()


def test_the_digest_runs_every_minute_from_celery_beat(settings):
    from alerts.tasks import email_lost_deliveries

    entry = settings.CELERY_BEAT_SCHEDULE["email-lost-deliveries"]
    assert entry["task"] == email_lost_deliveries.name and entry["schedule"] == 60.0
