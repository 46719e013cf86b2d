"""Endpoint URLs fuzzed with hypothesis through the validator, the form, the
create_webhook command and the model: IDNs, ports, IPv6 literals,
percent-encoding, over-long hosts and plain junk.

Every bad input here is generated: each example says which by its parts. The
properties: only ValidationError (or the command's CommandError) ever comes
out; whatever is accepted is an HTTPS URL that requests can send, with no
credentials and no internal literal address; the four entry points agree.
"""

import socket
from io import StringIO
from urllib.parse import urlsplit

import pytest
import requests
import urllib3
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.forms import SubscriptionForm
from subscriptions.addresses import blocked_reason
from subscriptions.models import Subscription
from subscriptions.validators import validate_endpoint_url

PUBLIC = "93.184.216.34"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ascii_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
idn_label = st.text(st.characters(categories=["Ll", "Lu", "Lo", "Nd", "Mn"]), min_size=1, max_size=12)
junk_label = st.text(min_size=1, max_size=70)
label = st.one_of(ascii_label, ascii_label, idn_label, junk_label, st.integers(60, 70).map(lambda n: "a" * n))
tlds = st.sampled_from(["com", "org", "io", "co.uk", "xn--p1ai", "рф", "テスト", "1", "c"])
names = st.tuples(st.lists(label, min_size=1, max_size=4), tlds).map(lambda p: ".".join([*p[0], p[1]]))
hosts = st.one_of(
    names,
    names,
    st.tuples(st.lists(ascii_label, min_size=1, max_size=4), tlds).map(lambda p: ".".join([*p[0], p[1]])),
    st.lists(st.just("abcdefghij"), min_size=20, max_size=30).map(lambda ls: ".".join([*ls, "com"])),  # over-long
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
    st.ip_addresses(v=6).map(str),  # unbracketed IPv6
    st.integers(0, 2**32).map(str),  # decimal IPv4
    st.sampled_from(["localhost", "127.1", "0x7f.0.0.1", "0177.0.0.1", "[::ffff:7f00:1]", "[fe80::1%25eth0]",
                     "example.com.", "xn--nxasmq6b.com", "ex%61mple.com", "%31%32%37.0.0.1", "ｅｘａｍｐｌｅ.com",
                     "example。com", "exa\u200bmple.com", "evil.com\\@good.com", "a@b.com", ""]),
)
ports = st.one_of(st.none(), st.none(), st.integers(0, 65535).map(str), st.integers(-1, 99999).map(str),
                  st.text(max_size=6))
paths = st.one_of(
    st.from_regex(r"[A-Za-z0-9._~/%-]{0,30}(\?[A-Za-z0-9=&%]{0,20})?", fullmatch=True),
    st.text(max_size=40),
    st.sampled_from(["%2e%2e/%2e%2e/etc", "%00", "a?b=%ZZ", "#frag", "?q=1", "caf%C3%A9", "été"]),
)
schemes = st.sampled_from(["https", "https", "https", "HTTPS", "http", "ftp", "", "javascript"])


@st.composite
def urls(draw) -> str:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.text(max_size=200))
    port = draw(ports)
    url = f"{draw(schemes)}://{draw(hosts)}{'' if port is None else ':' + port}/{draw(paths)}"
    return url if draw(st.booleans()) else f"  {url} "


def accepts(url: str) -> bool:
    """Return whether the validator accepts url; fail the test on any other exception."""
    try:
        validate_endpoint_url(url)
    except ValidationError as exc:
        assert exc.messages and all(m.strip() for m in exc.messages)
        return False
    return True


@pytest.fixture
def resolver(monkeypatch):
    """Resolve every name to the address in resolver["answer"], without the network."""
    state = {"answer": PUBLIC}

    def fake(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (state["answer"], 443))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return state


@pytest.fixture
def guarded(settings, resolver):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    return resolver


@FUZZ
@given(url=urls())
@example(url="https://[::ffff:127.0.0.1]/")
@example(url="https://example.com:443@127.0.0.1/")
@example(url="https://xn--nxasmq6b.com/")
def test_what_is_accepted_is_sendable_https_without_credentials_or_internal_literals(guarded, url):
    if not accepts(url):
        return
    assert urlsplit(url).scheme.lower() == "https"
    assert len(url) <= 2048
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)  # raises if requests could not send it
    target = urllib3.util.parse_url(prepared.url)
    assert target.scheme == "https" and target.host and target.auth is None
    try:
        reason = blocked_reason(target.host.strip("[]"))
    except ValueError:
        return  # a name: checked through the resolver
    assert reason is None, f"{url} reaches {target.host}, {reason}"


@FUZZ
@given(url=urls())
@example(url="https://localhost/")
@example(url="https://example.com./")
def test_when_every_name_resolves_to_loopback_only_public_literal_addresses_get_through(guarded, url):
    guarded["answer"] = "127.0.0.1"
    if not accepts(url):
        return
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    host = urllib3.util.parse_url(prepared.url).host.strip("[]")
    assert blocked_reason(host) is None  # a literal (a name would have raised ValueError) and public


@FUZZ
@given(url=urls())
@example(url="")  # bad input: nothing
@example(url="-https://example.com/")  # bad input: reads like an option to the command's parser
def test_the_form_the_command_and_the_model_agree_with_the_validator(guarded, org, url):
    expected = accepts(url.strip())

    form = SubscriptionForm(data={"url": url, "activity_types": ["lot.created"]})
    assert form.is_valid() == expected, form.errors

    out = StringIO()
    try:
        # "--": whatever the URL starts with, it is the URL argument, not an option
        call_command("create_webhook", "--activity-types", "lot.created", "--", "acme", url, stdout=out)
        created = True
    except CommandError as exc:
        assert str(exc).startswith("url: ")
        created = False
    assert created == expected
    if created:
        assert out.getvalue().splitlines()[-1].startswith("whsec_")

    model = Subscription(organisation=org, url=url.strip(), secret_encrypted="x")
    try:
        model.full_clean()
        model_accepts = True
    except ValidationError as exc:
        assert set(exc.message_dict) == {"url"}
        model_accepts = False
    assert model_accepts == expected


@FUZZ
@given(url=urls())
def test_with_private_networks_allowed_only_syntax_decides(settings, resolver, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    resolver["answer"] = "127.0.0.1"
    if accepts(url):
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        assert urllib3.util.parse_url(prepared.url).scheme == "https"
