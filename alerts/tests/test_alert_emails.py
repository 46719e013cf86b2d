"""Alert emails reach a real SMTP server when an endpoint starts failing or is paused automatically.

Sending goes through the worker's task in-process (conftest.send_now) to the real HTTPS
receiver; the email through Django's SMTP backend to aiosmtpd on 127.0.0.1.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import EndpointAlert
from alerts.services import ALERT_EVERY, alert_preference_set
from conftest import make_subscription, make_user, send_now
from delivery import health
from delivery.models import Delivery, EndpointHealth
from organisations.models import Membership
from subscriptions.activity import record_activity
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db

FAILING = "Webhook failing:"
PAUSED = "Webhook paused automatically:"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """No worker here: the test runs the task itself, so wake-ups publish nothing."""
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)


@pytest.fixture
def breaker(monkeypatch, settings):
    monkeypatch.setattr(health, "BREAKER_THRESHOLD", 2)
    settings.WEBHOOKS_RETRY_SCHEDULE = [1] * 8


@pytest.fixture
def admins(org):
    """acme's people: two admins who want alerts, one admin who turned them off, one member."""
    people = {}
    for name, role in [("alice", "admin"), ("dora", "admin"), ("carol", "admin"), ("bob", "member")]:
        user = make_user(name, org, role)
        user.email = f"{name}@acme.test"
        user.save()
        people[name] = user
    alert_preference_set(membership=Membership.objects.get(user=people["carol"]), email_endpoint_alerts=False)
    return people


def _send_all(subscription):
    """Run the sending task once for the endpoint (as a wake-up would); return the attempts made."""
    delivery = Delivery.objects.filter(subscription=subscription).order_by("created_at").first()
    return send_now(delivery.id)


def _reopen_breaker(subscription):
    """Let the breaker's cool-down end now, so the next send is a probe (which fails and opens it again)."""
    EndpointHealth.objects.filter(subscription=subscription).update(open_until=timezone.now() - timedelta(seconds=1))
    Delivery.objects.filter(subscription=subscription, state=Delivery.State.PENDING).update(
        next_attempt_at=timezone.now())


def test_a_failing_endpoint_emails_each_admin_who_wants_it_once_with_the_link(
        org, admins, receiver, breaker, smtp_server):
    subscription, _ = make_subscription(org, url=receiver.url, description="ERP north")
    receiver.default = 500  # bad input: the endpoint fails every request
    for n in range(4):
        record_activity(organisation=org, activity_type="lot.created", data={"n": n})

    _send_all(subscription)  # two failures: the breaker opens

    assert len(receiver.received) == 2
    assert sorted(r for rcpts, _ in smtp_server.messages for r in rcpts) == ["alice@acme.test", "dora@acme.test"]
    (message,) = smtp_server.to("alice@acme.test")
    assert message["Subject"].startswith(FAILING) and receiver.url in message["Subject"]
    assert message["To"] == "alice@acme.test"  # one email each: no admin sees the others' addresses
    assert message["From"] == "GrowerIQ Webhooks <webhooks@groweriq.test>"
    body = message.get_content()
    assert f"https://webhooks.groweriq.test/administration/webhooks/{subscription.id}/" in body
    assert "What failed: HTTP 500" in body and "ERP north" in body
    assert "Failed attempts in a row: 2" in body
    assert "https://webhooks.groweriq.test/accounts/notifications/" in body

    # The breaker opens again (a failed probe) within ALERT_EVERY: no second email.
    _reopen_breaker(subscription)
    _send_all(subscription)
    assert len(receiver.received) == 3
    assert EndpointHealth.objects.get(subscription=subscription).consecutive_failures == 3
    assert len(smtp_server.messages) == 2

    # Once ALERT_EVERY has passed, the next opening tells them again.
    EndpointAlert.objects.filter(subscription=subscription).update(
        failing_sent_at=timezone.now() - ALERT_EVERY - timedelta(seconds=1))
    _reopen_breaker(subscription)
    _send_all(subscription)
    assert len(receiver.received) == 4
    assert len(smtp_server.to("alice@acme.test")) == 2
    assert smtp_server.to("carol@acme.test") == [] and smtp_server.to("bob@acme.test") == []


def test_a_410_gone_emails_paused_automatically_once(org, admins, receiver, breaker, smtp_server):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 410  # bad input: the endpoint is gone
    for n in range(3):
        record_activity(organisation=org, activity_type="lot.created", data={"n": n})

    _send_all(subscription)
    _send_all(subscription)  # a second wake-up finds the subscription paused: nothing more is sent

    assert Subscription.objects.get(id=subscription.id).state == Subscription.State.PAUSED
    assert len(receiver.received) == 1
    (message,) = smtp_server.to("alice@acme.test")
    assert message["Subject"].startswith(PAUSED)
    body = message.get_content()
    assert "410 Gone" in body
    assert f"https://webhooks.groweriq.test/administration/webhooks/{subscription.id}/" in body
    assert len(smtp_server.messages) == 2  # alice and dora, once each; not carol who turned them off


def test_an_admin_who_turned_alerts_off_gets_none(org, admins, receiver, breaker, smtp_server):
    for name in ("alice", "dora"):
        alert_preference_set(membership=Membership.objects.get(user=admins[name]), email_endpoint_alerts=False)
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    for n in range(3):
        record_activity(organisation=org, activity_type="lot.created", data={"n": n})

    _send_all(subscription)

    assert EndpointHealth.objects.get(subscription=subscription).open_until is not None
    assert smtp_server.messages == []


def test_when_the_mail_server_is_down_delivery_goes_on_and_the_next_opening_tries_again(
        org, admins, receiver, breaker, smtp_server, settings):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.default = 500
    for n in range(4):
        record_activity(organisation=org, activity_type="lot.created", data={"n": n})
    real_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 1  # bad input: nothing listens there

    _send_all(subscription)

    assert len(receiver.received) == 2 and smtp_server.messages == []
    assert EndpointAlert.objects.get(subscription=subscription).failing_sent_at is None  # the claim given back
    settings.EMAIL_PORT = real_port
    _reopen_breaker(subscription)
    _send_all(subscription)
    assert len(smtp_server.to("alice@acme.test")) == 1
