"""Custom headers per subscription: validated names, secret values encrypted, sent on every attempt, masked."""

import json

import pytest
from django.core.exceptions import ValidationError
from standardwebhooks.webhooks import Webhook

from conftest import make_subscription, send_now
from delivery.models import Attempt, Delivery
from subscriptions.activity import record_activity
from subscriptions.custom_headers import MASK
from subscriptions.models import Subscription
from subscriptions.services import subscription_set_headers

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
    ("X-Ok", "two\r\nlines", "one line"),                      # header injection attempt
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
    with pytest.raises(ValidationError, match="At most 10"):
        subscription_set_headers(subscription=subscription, headers=[
            {"name": f"X-{n}", "value": "v"} for n in range(11)])
