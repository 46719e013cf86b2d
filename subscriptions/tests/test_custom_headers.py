"""Custom headers per subscription: validated names, secret values encrypted, sent on every attempt, masked."""

import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from standardwebhooks.webhooks import Webhook

from conftest import make_subscription, send_now
from delivery.models import Attempt, Delivery
from subscriptions.activity import record_activity
from subscriptions.custom_headers import (
    MASK,
    MAX_VALUE,
    CustomHeaderUnsendable,
    headers_for_sending,
    secrets_scrubbed,
    value_problem,
)
from subscriptions.models import Subscription
from subscriptions.services import subscription_set_headers
from subscriptions.signing_secrets import encrypt_secret

pytestmark = pytest.mark.django_db


def test_headers_are_sent_on_every_attempt_and_a_secret_value_is_encrypted_and_masked(org, receiver):
    subscription, secret = make_subscription(org, url=receiver.url)
    subscription_set_headers(subscription=subscription, headers=[
        {"name": "X-Tenant", "value": "acme-eu", "secret": False},
        {"name": "Authorization", "value": "Bearer gw-key-123", "secret": True},
    ])
    stored = Subscription.objects.get(id=subscription.id)
    assert "gw-key-123" not in json.dumps(stored.custom_headers)  # encrypted at rest

    receiver.script.append(500)
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "H"})
    delivery = Delivery.objects.get(event=event)
    send_now(delivery.id)
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=delivery.created_at)
    send_now(delivery.id)

    assert len(receiver.received) == 2
    for request in receiver.received:  # the first attempt and the retry
        assert request.headers["x-tenant"] == "acme-eu"
        assert request.headers["authorization"] == "Bearer gw-key-123"
        assert Webhook(secret).verify(request.body, request.headers)  # the signature is unchanged by them
    for attempt in Attempt.objects.filter(delivery=delivery):
        assert attempt.request_headers["Authorization"] == MASK
        assert attempt.request_headers["X-Tenant"] == "acme-eu"
        assert "gw-key-123" not in json.dumps(attempt.request_headers)


def test_a_masked_secret_value_keeps_the_stored_one(org, receiver):
    subscription, _ = make_subscription(org, url=receiver.url)
    subscription_set_headers(subscription=subscription, headers=[
        {"name": "X-Api-Key", "value": "k-1", "secret": True}])
    before = Subscription.objects.get(id=subscription.id).custom_headers
    subscription_set_headers(subscription=subscription, headers=[
        {"name": "X-Api-Key", "value": MASK, "secret": True}])  # the form shows the mask, never the value
    assert Subscription.objects.get(id=subscription.id).custom_headers == before


def test_the_mask_cannot_move_a_secret_to_another_name_or_make_it_plain(org):
    subscription, _ = make_subscription(org)
    subscription_set_headers(subscription=subscription, headers=[
        {"name": "X-Api-Key", "value": "k-1", "secret": True}])
    before = Subscription.objects.get(id=subscription.id).custom_headers
    for bad in ({"name": "X-Other-Key", "value": MASK, "secret": True},   # bad input: the mask under a new name
                {"name": "X-Api-Key", "value": MASK, "secret": False}):   # bad input: the mask made plain text
        with pytest.raises(ValidationError, match=f"Type the value of {bad['name']} again"):
            subscription_set_headers(subscription=subscription, headers=[bad])
    assert Subscription.objects.get(id=subscription.id).custom_headers == before


@pytest.mark.parametrize(("name", "value", "message"), [
    ("Host", "evil.example", "set by the sender"),            # bad input: a header we own
    ("Content-Type", "text/plain", "set by the sender"),
    ("webhook-signature", "v1,forged", "set by the sender"),
    ("Transfer-Encoding", "chunked", "set by the sender"),   # hop-by-hop
    ("Bad Name", "x", "not a valid header name"),              # a space in the name
    ("X-Ok", "two\r\nlines", "visible ASCII"),                 # header injection attempt
    ("X-Ok", "", "needs a value"),
    ("X-Ok", MASK, "Type the value of X-Ok again"),            # the mask echoed back as a plain value
])
def test_bad_headers_are_refused_and_nothing_is_stored(org, name, value, message):
    subscription, _ = make_subscription(org)
    with pytest.raises(ValidationError, match=message):
        subscription_set_headers(subscription=subscription, headers=[{"name": name, "value": value}])
    assert Subscription.objects.get(id=subscription.id).custom_headers == []


def test_the_same_name_twice_and_more_than_ten_are_refused(org):
    subscription, _ = make_subscription(org)
    with pytest.raises(ValidationError, match="given twice"):
        subscription_set_headers(subscription=subscription, headers=[
            {"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}])
    with pytest.raises(ValidationError, match="At most 10 custom headers: 11 were given. Remove 1; nothing was saved."):
        subscription_set_headers(subscription=subscription, headers=[
            {"name": f"X-{n}", "value": "v"} for n in range(11)])
    assert Subscription.objects.get(id=subscription.id).custom_headers == []


# --- the value rule: RFC 9110 field-value, visible ASCII only (finding 5 of issue 21) ------------------------

@pytest.mark.parametrize("value", [
    "TOPSECRET-k\u20acy-42",        # bad input: the euro sign (outside Latin-1: every attempt used to fail)
    "caf\u00e9",                    # Latin-1 but not ASCII (obs-text: RFC 9110 says do not generate it)
    "a\u0085b",                     # a C1 control (NEL), which used to be sent as a raw byte
    "a\u0085",                      # ... at the end, where Python's strip() would have removed it silently
    "a\u00a0b",                     # a no-break space
    "a\x7fb",                       # DEL
    "a\x00b",                       # NUL
    "line\nbreak",                  # LF: header injection
    "\U0001f600",                   # an emoji
])
@pytest.mark.parametrize("secret", [False, True])
def test_a_value_outside_visible_ascii_is_refused_and_nothing_is_stored(org, value, secret):
    subscription, _ = make_subscription(org)
    with pytest.raises(ValidationError, match="may only hold visible ASCII characters, spaces and tabs") as caught:
        subscription_set_headers(subscription=subscription, headers=[{"name": "X-Key", "value": value,
                                                                       "secret": secret}])
    assert Subscription.objects.get(id=subscription.id).custom_headers == []
    (message,) = caught.value.message_dict["custom_headers"]
    if secret:  # the message is read on screens: it does not say where in a secret the bad character is
        assert message == ("The value of X-Key may only hold visible ASCII characters, spaces and tabs (what an HTTP "
                           "header can carry): no line breaks, control characters, accents or symbols such as €.")


def test_a_plain_values_error_says_which_character_is_wrong():
    assert value_problem(name="X-Key", value="k\u20acy", secret=False).endswith(
        "; character 2 is “\u20ac” (U+20AC).")
    assert value_problem(name="X-Key", value="k\u0085", secret=False).endswith("; character 2 is U+0085.")


@pytest.mark.parametrize("value", ["Bearer abc.DEF-123_~+/=", "a\tb", "x y  z", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
                                   "v" * MAX_VALUE])
def test_visible_ascii_spaces_and_tabs_are_accepted_and_sent_exactly(org, value):
    subscription, _ = make_subscription(org)
    subscription_set_headers(subscription=subscription, headers=[{"name": "X-Key", "value": f" {value}\t",
                                                                   "secret": True}])
    stored = Subscription.objects.get(id=subscription.id).custom_headers
    assert headers_for_sending(stored=stored) == {"X-Key": value}  # only the spaces and tabs around it trimmed


def test_a_value_longer_than_the_limit_is_refused(org):
    subscription, _ = make_subscription(org)
    with pytest.raises(ValidationError, match=f"at most {MAX_VALUE} characters"):
        subscription_set_headers(subscription=subscription, headers=[{"name": "X-Key", "value": "v" * (MAX_VALUE + 1)}])


def _store_as_before_the_rule(subscription, value):
    """Write a secret header value the old rule accepted, as an existing row holds it."""
    Subscription.objects.filter(id=subscription.id).update(custom_headers=[
        {"name": "X-Api-Key", "value": encrypt_secret(value), "secret": True}])


def test_a_stored_value_from_before_the_rule_is_a_clear_error_that_reveals_nothing_of_it(org):
    subscription, _ = make_subscription(org)
    _store_as_before_the_rule(subscription, "TOPSECRET-k\u20acy-42")  # bad input: stored before the rule

    with pytest.raises(CustomHeaderUnsendable) as caught:
        headers_for_sending(stored=Subscription.objects.get(id=subscription.id).custom_headers)

    assert str(caught.value) == ("The custom header X-Api-Key has a stored value HTTP cannot carry (only visible "
                                 "ASCII, spaces and tabs can be sent): type its value again on the Edit page.")


def test_a_stored_value_from_before_the_rule_is_not_sent_and_its_attempt_reveals_nothing_of_it(org, receiver):
    subscription, _ = make_subscription(org, url=receiver.url)
    _store_as_before_the_rule(subscription, "TOPSECRET-k\u20acy-42")  # bad input: stored before the rule
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "H"})

    attempt = send_now(Delivery.objects.get(event=event).id)

    assert receiver.received == []  # nothing half-sent
    assert attempt is not None
    assert attempt.error_message == ("The custom header X-Api-Key has a stored value HTTP cannot carry (only visible "
                                     "ASCII, spaces and tabs can be sent): type its value again on the Edit page.")
    recorded = json.dumps([attempt.error_message, attempt.request_headers], ensure_ascii=False)
    for leak in ("TOPSECRET", "\u20ac", "\\u20ac", "position", "latin-1", "codec"):
        assert leak not in recorded


def test_a_stored_value_under_a_removed_key_is_a_clear_error(settings, org):
    subscription, _ = make_subscription(org)
    subscription_set_headers(subscription=subscription, headers=[{"name": "X-Api-Key", "value": "k", "secret": True}])
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # bad input: its key removed, not rotated

    with pytest.raises(CustomHeaderUnsendable, match="^The custom header X-Api-Key cannot be decrypted"):
        headers_for_sending(stored=Subscription.objects.get(id=subscription.id).custom_headers)


# --- secrets_scrubbed: no error text keeps a secret header's value -----------------------------------------

def _stored(*values, plain=()):
    return ([{"name": f"X-S{n}", "value": encrypt_secret(v), "secret": True} for n, v in enumerate(values)]
            + [{"name": f"X-P{n}", "value": v, "secret": False} for n, v in enumerate(plain)])


def test_scrubbing_masks_each_secret_value_and_leaves_the_rest():
    stored = _stored("gw-key-123", "tok-456", plain=["acme-eu"])
    text = "Failed: {'X-S0': 'gw-key-123', 'X-S1': 'tok-456', 'X-P0': 'acme-eu'} gw-key-123"

    assert secrets_scrubbed(text, stored=stored) == (
        f"Failed: {{'X-S0': '{MASK}', 'X-S1': '{MASK}', 'X-P0': 'acme-eu'}} {MASK}")


def test_scrubbing_masks_the_escaped_forms_a_message_may_quote():
    # Bad input: a value with a quote, a backslash and a non-ASCII character, quoted by repr, JSON and bytes' repr.
    value = "it's\\k\u20acy"
    stored = _stored(value)
    for quoted in (repr(value), json.dumps(value), repr(value.encode("utf-8"))):
        scrubbed = secrets_scrubbed(f"error near {quoted} here", stored=stored)
        assert "k\u20acy" not in scrubbed and "xe2" not in scrubbed and "u20ac" not in scrubbed, scrubbed
        assert scrubbed.startswith("error near ") and scrubbed.endswith(" here") and MASK in scrubbed


def test_scrubbing_a_value_inside_another_leaves_no_part_of_the_longer_one():
    stored = _stored("abc", "xxabcxx")
    assert secrets_scrubbed("got xxabcxx and abc", stored=stored) == f"got {MASK} and {MASK}"


def test_scrubbing_with_no_secret_or_an_undecryptable_one_changes_nothing(settings):
    stored = _stored("gw-key-123", plain=["gw-key-123"])
    assert secrets_scrubbed("", stored=stored) == ""
    assert secrets_scrubbed("plain gw-key-123", stored=_stored(plain=["gw-key-123"])) == "plain gw-key-123"
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the value cannot have been sent
    assert secrets_scrubbed("timeout after 10 s", stored=stored) == "timeout after 10 s"
