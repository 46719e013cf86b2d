"""Subscription services: create, edit, regenerate, pause, resume, delete, test."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from conftest import make_subscription
from delivery.models import Delivery, Event
from subscriptions.models import Subscription, TrailEntry
from subscriptions.services import (
    subscription_create,
    subscription_delete,
    subscription_pause,
    subscription_regenerate_secret,
    subscription_resume,
    subscription_send_test,
    subscription_update,
)
from subscriptions.signing_secrets import decrypt_secret

pytestmark = pytest.mark.django_db


def test_create_returns_a_whsec_secret_of_32_random_bytes(org, alice):
    import base64

    subscription, secret = subscription_create(
        organisation=org, url="https://erp.example.com/hooks", activity_types=["lot.created", "order.created"],
        created_by=alice,
    )
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert sorted(subscription.activity_types.values_list("activity_type", flat=True)) == [
        "lot.created", "order.created"]
    assert subscription.created_by == alice and subscription.is_active
    assert TrailEntry.objects.get(subscription=subscription).action == TrailEntry.Action.CREATED


def test_the_database_column_holding_the_secret_does_not_contain_it(org):
    subscription, secret = make_subscription(org)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM subscriptions_subscription WHERE id = %s", [subscription.id.hex
                       if connection.vendor == "sqlite" else subscription.id])
        (stored,) = cursor.fetchone()
    key_part = secret.removeprefix("whsec_")
    assert secret not in stored and key_part not in stored
    assert decrypt_secret(stored) == secret  # but the delivery code can read it


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://erp.example.com/hooks", "The URL must use HTTPS."),  # plain HTTP
        ("https://user:pw@erp.example.com/hooks", "must not contain a username or password"),  # credentials
        ("https:///nohost", "host"),  # no host
        ("https://erp.example.com/" + "a" * 2050, "at most 2,048 characters"),  # too long
        ("not a url", "HTTPS"),  # not a URL at all
    ],
)
def test_create_refuses_bad_urls_and_writes_nothing(org, url, message):
    with pytest.raises(ValidationError) as excinfo:
        subscription_create(organisation=org, url=url, activity_types=["lot.created"])
    assert message in str(excinfo.value)
    assert Subscription.objects.count() == 0


@pytest.mark.parametrize("types, message", [([], "Select at least one"), (["lot.exploded"], "Unknown activity type")])
def test_create_refuses_missing_or_unknown_activity_types(org, types, message):
    with pytest.raises(ValidationError, match=message):
        subscription_create(organisation=org, url="https://erp.example.com/h", activity_types=types)
    assert Subscription.objects.count() == 0


def test_update_changes_url_and_types_for_the_next_event(org, alice):
    subscription, _ = make_subscription(org, activity_types=["lot.created"])
    subscription_update(subscription=subscription, url="https://new.example.com/h",
                        activity_types=["order.created"], by=alice)
    subscription.refresh_from_db()
    assert subscription.url == "https://new.example.com/h"
    from subscriptions.activity import record_activity

    assert not Delivery.objects.filter(event=record_activity(organisation=org, activity_type="lot.created", data={}))
    assert Delivery.objects.filter(event=record_activity(organisation=org, activity_type="order.created", data={}))
    entry = TrailEntry.objects.filter(subscription=subscription, action=TrailEntry.Action.EDITED).get()
    assert "new.example.com" in entry.detail and entry.actor == alice


def test_a_save_that_changes_nothing_leaves_no_activity_entry_and_a_description_change_says_so(org, alice):
    """Bad input: Save pressed with nothing changed (the activity feed used to say "Edited - no change")."""
    subscription, _ = make_subscription(org, activity_types=["lot.created"], description="ERP")
    subscription_update(subscription=subscription, url=subscription.url, activity_types=["lot.created"],
                        description="ERP ", by=alice)
    assert not TrailEntry.objects.filter(subscription=subscription, action=TrailEntry.Action.EDITED).exists()
    subscription_update(subscription=subscription, url=subscription.url, activity_types=["lot.created"],
                        description="ERP north", by=alice)
    entry = TrailEntry.objects.get(subscription=subscription, action=TrailEntry.Action.EDITED)
    assert entry.detail == "description changed"


def test_regenerate_replaces_the_secret_at_once_and_never_logs_it(org, alice):
    subscription, old = make_subscription(org)
    new = subscription_regenerate_secret(subscription=subscription, by=alice)
    subscription.refresh_from_db()
    assert new != old and decrypt_secret(subscription.secret_encrypted) == new
    trail = json.dumps(list(TrailEntry.objects.values("action", "detail")))
    assert new not in trail and old not in trail


def test_pause_holds_and_resume_releases_oldest_first(org, django_capture_on_commit_callbacks):
    from subscriptions.activity import record_activity

    subscription, _ = make_subscription(org)
    subscription_pause(subscription=subscription)
    first = record_activity(organisation=org, activity_type="lot.created", data={"n": 1})
    second = record_activity(organisation=org, activity_type="lot.created", data={"n": 2})
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.HELD}
    with django_capture_on_commit_callbacks(execute=False):
        assert subscription_resume(subscription=subscription) == 2
    due = Delivery.objects.order_by("next_attempt_at", "created_at")
    assert [d.event_id for d in due] == [first.id, second.id]
    assert set(due.values_list("state", flat=True)) == {Delivery.State.PENDING}


def test_delete_cancels_pending_and_held_deliveries_and_stops_future_ones(org):
    from subscriptions.activity import record_activity

    subscription, _ = make_subscription(org)
    record_activity(organisation=org, activity_type="lot.created", data={})
    assert subscription_delete(subscription=subscription) == 1
    assert Delivery.objects.get().state == Delivery.State.CANCELLED
    record_activity(organisation=org, activity_type="lot.created", data={})
    assert Delivery.objects.count() == 1  # no delivery for the deleted subscription


def test_send_test_delivers_the_sample_with_test_true_to_that_subscription_only(org):
    subscription, _ = make_subscription(org)
    make_subscription(org, url="https://other.example.com/h")
    event = subscription_send_test(subscription=subscription, activity_type="lot.created")
    body = json.loads(Event.objects.get(id=event.id).body)
    assert body["test"] is True and body["data"]["lot_id"].startswith("LOT-")
    assert list(Delivery.objects.values_list("subscription_id", flat=True)) == [subscription.id]
