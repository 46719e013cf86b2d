"""Endpoint URL validation at save time: syntax, and the SSRF guard, through the
validator, the create_webhook command and the model (the form: console/tests/test_forms.py)."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from conftest import make_subscription
from delivery.tests.fake_dns import FakeDNS
from subscriptions.models import Subscription
from subscriptions.validators import validate_endpoint_url

PUBLIC = "93.184.216.34"


@pytest.fixture
def guarded(settings):
    """The production setting: private networks are not allowed."""
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    return settings


@pytest.fixture
def dns(monkeypatch):
    return FakeDNS(monkeypatch)


def message_of(url: str) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_endpoint_url(url)
    return " ".join(caught.value.messages)


# --- syntax ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("bad_input", "url", "expected"),
    [
        ("empty", "", "Enter the endpoint URL."),
        ("plain HTTP", "http://hooks.example.com/in", "The URL must use HTTPS."),
        ("no scheme", "hooks.example.com/in", "The URL must use HTTPS."),
        ("credentials", "https://user:pw@hooks.example.com/in", "must not contain a username or password"),
        ("port out of range", "https://hooks.example.com:99999/in", "port is not a number"),
        ("port zero", "https://hooks.example.com:0/in", "port 0 cannot be used"),
        ("fragment", "https://hooks.example.com/in#x", "must not contain a #fragment"),
        ("space in host", "https://hooks example.com/in", "Enter a valid URL"),
        ("over-long URL", "https://hooks.example.com/" + "a" * 2100, "at most 2,048 characters"),
    ],
)
def test_malformed_urls_are_refused_with_a_clear_message(bad_input, url, expected):
    assert expected in message_of(url)


def test_a_public_https_url_is_accepted(guarded, dns):
    dns.answer("hooks.example.com", PUBLIC)
    validate_endpoint_url("https://hooks.example.com/in")


# --- SSRF: literal addresses ----------------------------------------------------

@pytest.mark.parametrize(
    ("bad_input", "host", "kind"),
    [
        ("IPv4 loopback", "127.0.0.1", "loopback"),
        ("other loopback", "127.3.4.5", "loopback"),
        ("RFC 1918 10/8", "10.1.2.3", "private"),
        ("RFC 1918 172.16/12", "172.16.0.9", "private"),
        ("RFC 1918 192.168/16", "192.168.1.1", "private"),
        ("cloud metadata service", "169.254.169.254", "link-local"),
        ("unspecified IPv4", "0.0.0.0", "unspecified"),
        ("multicast IPv4", "224.0.0.1", "multicast"),
        ("reserved IPv4", "240.0.0.1", "private"),  # Python files 240/4 under private too
        ("broadcast", "255.255.255.255", "private"),
        ("carrier-grade NAT", "100.64.0.1", "reserved for translation or special use"),
        ("IPv6 loopback", "[::1]", "loopback"),
        ("unspecified IPv6", "[::]", "unspecified"),
        ("IPv6 link-local", "[fe80::1]", "link-local"),
        ("IPv6 unique local", "[fd00::1]", "private"),
        ("IPv6 site-local", "[fec0::1]", "site-local"),
        ("IPv6 multicast", "[ff02::1]", "multicast"),
        ("IPv4-mapped loopback", "[::ffff:127.0.0.1]", "loopback"),
        ("IPv4-mapped metadata", "[::ffff:169.254.169.254]", "link-local"),
        ("IPv4-compatible loopback", "[::127.0.0.1]", "reserved"),
        ("NAT64 of loopback", "[64:ff9b::7f00:1]", "reserved"),
        ("6to4 of loopback", "[2002:7f00:1::]", "reserved for translation"),
    ],
)
def test_internal_literal_addresses_are_refused(guarded, bad_input, host, kind):
    message = message_of(f"https://{host}/hooks")
    assert "Webhooks cannot be sent to" in message
    assert kind in message
    assert "Use a public HTTPS endpoint." in message


def test_a_public_literal_address_is_accepted(guarded):
    validate_endpoint_url(f"https://{PUBLIC}/hooks")
    validate_endpoint_url("https://[2606:4700:4700::1111]:8443/hooks")


# --- SSRF: names ----------------------------------------------------------------

def test_a_name_resolving_to_loopback_is_refused(guarded, dns):
    # Bad input: a public-looking name whose DNS answer is 127.0.0.1.
    dns.answer("internal.example.com", "127.0.0.1")
    message = message_of("https://internal.example.com/hooks")
    assert "internal.example.com: it resolves to 127.0.0.1, a loopback address" in message


def test_localhost_from_the_hosts_file_is_refused(guarded):
    # Bad input: `localhost`, resolved by the real resolver (/etc/hosts).
    assert "a loopback address" in message_of("https://localhost:8443/hooks")


def test_a_name_with_any_internal_answer_is_refused(guarded, monkeypatch):
    # Bad input: round-robin DNS with one public and one metadata-service answer.
    import socket

    def two_answers(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    assert "resolves to 169.254.169.254, a link-local address" in message_of("https://mixed.example.com/")


def test_percent_encoded_host_is_refused(guarded, dns):
    # Bad input: %-escapes in the host, which requests would decode before resolving.
    dns.answer("internal.example.com", "10.0.0.8")
    assert message_of("https://internal.ex%61mple.com/") == "Enter a valid URL."


def test_a_name_that_does_not_resolve_is_accepted_and_checked_at_send(guarded, dns):
    # Decision (docs/SECURITY.md): DNS may come later; the send-time check still applies.
    dns.answer("not-yet.example.com")  # NXDOMAIN
    validate_endpoint_url("https://not-yet.example.com/hooks")
    assert dns.lookups["not-yet.example.com"] == 1


def test_the_private_network_switch_lifts_the_guard(settings, dns):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    dns.answer("internal.example.com", "127.0.0.1")
    validate_endpoint_url("https://127.0.0.1:8443/hooks")
    validate_endpoint_url("https://internal.example.com/hooks")
    assert dns.lookups["internal.example.com"] == 0  # no lookup at all in development


# --- the same refusal through every entry point ----------------------------------

def test_the_command_refuses_with_a_clear_error_and_creates_nothing(guarded, org):
    # Bad input: a loopback endpoint given to create_webhook.
    with pytest.raises(CommandError) as caught:
        call_command("create_webhook", "acme", "https://127.0.0.1:9000/in", "--activity-types", "lot.created")
    assert "url: Webhooks cannot be sent to 127.0.0.1: it is a loopback address." in str(caught.value)
    assert not Subscription.objects.exists()


def test_the_model_refuses_on_full_clean(guarded, org, dns):
    # Bad input: a subscription saved through the model with a name resolving to 10/8.
    dns.answer("intranet.example.com", "10.0.0.1")
    subscription = Subscription(organisation=org, url="https://intranet.example.com/", secret_encrypted="x")
    with pytest.raises(ValidationError) as caught:
        subscription.full_clean()
    assert "resolves to 10.0.0.1, a private-network address" in " ".join(caught.value.message_dict["url"])


def test_editing_to_an_internal_address_is_refused(guarded, org, dns):
    # Bad input: an existing, valid subscription edited to point at loopback.
    from subscriptions.services import subscription_update

    dns.answer("hooks.example.com", PUBLIC)
    subscription, _ = make_subscription(org, url="https://hooks.example.com/in")
    with pytest.raises(ValidationError):
        subscription_update(subscription=subscription, url="https://[::1]/in", activity_types=["lot.created"])
    subscription.refresh_from_db()
    assert subscription.url == "https://hooks.example.com/in"
