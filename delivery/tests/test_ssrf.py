"""The send-time SSRF guard: the address actually connected to is checked, so a
name that was public when saved and internal when sent (DNS rebinding) is
refused and recorded as a "blocked" attempt, and the receiver hears nothing."""

import pytest

from conftest import WORKER_ARGS, make_subscription, send_now, wait_until
from delivery import transport
from delivery.models import Attempt, Delivery
from delivery.tests.fake_dns import FakeDNS
from subscriptions.activity import record_activity

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"


@pytest.fixture
def dns(monkeypatch):
    return FakeDNS(monkeypatch)


def _rebinding_delivery(settings, org, receiver, dns, *, allow_private: bool):
    """Save a subscription while `localhost` answers a public address, then let it answer 127.0.0.1."""
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    dns.answer("localhost", PUBLIC, "127.0.0.1")
    subscription, _ = make_subscription(org, url=f"https://localhost:{receiver.port}/hooks")
    assert dns.lookups["localhost"] == 1  # the save-time check saw the public answer and accepted it
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = allow_private
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-1"})
    return Delivery.objects.get(event=event, subscription=subscription)


def test_dns_rebinding_between_save_and_send_is_blocked_and_recorded(settings, org, receiver, dns):
    # Bad input: a name that resolves to a public address at save and to 127.0.0.1 at send.
    delivery = _rebinding_delivery(settings, org, receiver, dns, allow_private=False)

    attempt = send_now(delivery.id)

    assert attempt.error_kind == Attempt.ErrorKind.BLOCKED == "blocked"
    assert attempt.error_message == "The endpoint resolves to a blocked address (127.0.0.1)."
    assert attempt.status_code is None
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.last_error == attempt.error_message


def test_the_same_rebinding_reaches_the_receiver_when_private_networks_are_allowed(settings, org, receiver, dns):
    """Control for the test above: the fake resolver really steers the connection to the receiver."""
    delivery = _rebinding_delivery(settings, org, receiver, dns, allow_private=True)

    attempt = send_now(delivery.id)

    assert attempt.status_code == 200
    assert len(receiver.received) == 1


def test_one_send_resolves_once_and_connects_to_the_address_it_checked(settings, receiver, dns):
    # Bad input: an answer that changes between the check and the connection
    # (127.0.0.1 for the check, public afterwards). The connection is pinned to the
    # checked address, so there is no second lookup to race with.
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    dns.answer("localhost", "127.0.0.1", PUBLIC)

    response = transport.post(f"https://localhost:{receiver.port}/hooks", b"{}", {})

    assert response.error_kind == "blocked"
    assert dns.lookups["localhost"] == 1
    assert receiver.received == []


@pytest.mark.parametrize(
    ("bad_input", "address"),
    [
        ("loopback literal", "127.0.0.1"),
        ("IPv4-mapped IPv6 loopback", "::ffff:127.0.0.1"),
        ("cloud metadata service", "169.254.169.254"),
        ("RFC 1918 address", "10.20.30.40"),
        ("IPv6 loopback", "::1"),
        ("unspecified address", "0.0.0.0"),
        ("multicast address", "239.1.2.3"),
        # Not refused by requests-hardened on this Python; refused by our stricter policy.
        ("IPv6 site-local", "fec0::1"),
        ("IPv4-compatible IPv6 loopback", "::7f00:1"),  # ::127.0.0.1
    ],
)
def test_every_internal_answer_at_send_time_is_blocked(settings, dns, bad_input, address):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    dns.answer("hooks.example.com", address)

    response = transport.post("https://hooks.example.com/in", b"{}", {})

    assert response.error_kind == "blocked"
    assert response.error_message == f"The endpoint resolves to a blocked address ({address.removeprefix('::ffff:')})."


def test_a_literal_loopback_url_saved_in_development_is_blocked_in_production(settings, org, receiver):
    # Bad input: a subscription to 127.0.0.1 saved while the switch was on, sent after it was turned off.
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    make_subscription(org, url=receiver.url)
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-2"})
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False

    attempt = send_now(Delivery.objects.get(event=event).id)

    assert attempt.error_kind == "blocked"
    assert receiver.received == []


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_with_the_guard_on_records_blocked_and_sends_nothing(require_services, org, receiver,
                                                                        celery_process):
    # Bad input: an endpoint on 127.0.0.1, saved while the switch was on, sent by a
    # worker started as in production (WEBHOOKS_ALLOW_PRIVATE_NETWORKS=false).
    celery_process(*WORKER_ARGS, env={"WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "false"})
    make_subscription(org, url=receiver.url)

    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-3"})

    attempt = wait_until(lambda: Attempt.objects.filter(delivery__event=event).first(), message="an attempt")
    assert attempt.error_kind == "blocked"
    assert attempt.error_message == "The endpoint resolves to a blocked address (127.0.0.1)."
    assert receiver.received == []
