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
from delivery.tests.receiver import answer
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


# --- issue 21: plain-text subjects, the receiver's words quoted, the link for its organisation -----------------

PHISH = "URGENT: your account is locked, reset it at https://evil.example/reset"


def _breaker_opened_by(organisation, receiver, answer_with):
    """Make organisation's webhook to the receiver fail twice with that answer, so that the breaker opens."""
    subscription, _ = make_subscription(organisation, url=receiver.url)
    receiver.default = answer_with
    for n in range(2):
        record_activity(organisation=organisation, activity_type="lot.created", data={"n": n})
    _send_all(subscription)
    return subscription


def test_the_subject_is_plain_text_with_nothing_html_escaped(org, admins, receiver, breaker, smtp_server):
    org.name = "Smith & Sons <EU> \"North\""  # bad input for an HTML escaper: &, <, > and quotes
    org.save()
    _breaker_opened_by(org, receiver, 500)

    (message,) = smtp_server.to("alice@acme.test")
    assert message["Subject"] == f'{FAILING} {receiver.url} (Smith & Sons <EU> "North")'
    assert "&amp;" not in message.get_content() and "&lt;" not in message.get_content()


def test_the_receivers_own_words_are_quoted_labelled_and_one_line(org, admins, receiver, breaker, smtp_server):
    # Bad input: a receiver whose answer reads like our instructions, on several lines, with a bidi override.
    body = (f"{PHISH}\u202e Act within 24 hours or every webhook of yours is deleted.\r\n"
            "Call +1 555 0100 now.\nThe GrowerIQ team").encode()
    _breaker_opened_by(org, receiver, lambda handler: answer(handler, 503, body))

    text = smtp_server.to("alice@acme.test")[0].get_content()
    lines = text.splitlines()
    what = lines.index("What failed: HTTP 503 Service Unavailable")
    label = "The endpoint's answer, in its own words (first line): “"
    assert lines[what + 1].startswith(label + PHISH + " Act within") and lines[what + 1].endswith("…”")
    assert len(lines[what + 1].removeprefix(label).removesuffix("”")) == 120  # cut to one short line
    assert "Call +1 555" not in text and "The GrowerIQ team" not in text and "\u202e" not in text
    assert sum(PHISH[:40] in line for line in lines) == 1  # nowhere else, and never unquoted


def test_a_receiver_that_does_not_speak_http_is_quoted_as_the_recorded_error(
        org, admins, receiver, breaker, smtp_server):
    def not_http(handler):  # bad input: the phishing text as the status line
        handler.wfile.write(f"{PHISH}\r\n\r\n".encode())

    _breaker_opened_by(org, receiver, not_http)

    lines = smtp_server.to("alice@acme.test")[0].get_content().splitlines()
    what = next(i for i, line in enumerate(lines) if line.startswith("What failed:"))
    assert "URGENT" not in lines[what] and "evil" not in lines[what]
    assert lines[what + 1].startswith("The error as recorded, which may quote the endpoint (first line): “")
    assert lines[what + 1].endswith("”") and "URGENT" in lines[what + 1]


def test_the_links_open_the_webhook_for_an_admin_of_two_organisations(
        org, other_org, admins, receiver, breaker, smtp_server, client, web_settings):
    # Finding 6 of issue 21: alice works in acme; the alert is about globex's webhook; its link used to be a 404.
    Membership.objects.create(user=admins["alice"], organisation=other_org, role=Membership.Role.ADMIN)
    theirs = _breaker_opened_by(other_org, receiver, 500)
    (message,) = smtp_server.to("alice@acme.test")
    assert "(Globex Farms)" in message["Subject"]
    link = next(line for line in message.get_content().splitlines() if f"/{theirs.id}/" in line)
    client.force_login(admins["alice"])
    assert "Acme Cultivation" in client.get("/administration/webhooks/").content.decode()  # where she works now

    page = client.get(link.removeprefix("https://webhooks.groweriq.test"))

    assert page.status_code == 200
    body = page.content.decode()
    assert receiver.url in body and "You are now working in Globex Farms" in body
    assert 'selected>Globex Farms</option>' in body  # the header's switcher says where she is
    listed = client.get("/administration/webhooks/").content.decode()
    assert receiver.url in listed  # the Webhooks page is globex's now too
