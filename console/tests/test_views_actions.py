"""The detail page's actions: Edit and Save, Test Webhook, Pause and Resume, Delete with its confirmation."""

import json

import pytest
from django.urls import reverse

from conftest import make_subscription
from delivery.models import Delivery, Event
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.usefixtures("web_settings")


def action(name, subscription):
    return reverse(f"console:subscription_{name}", args=[subscription.id])


def test_edit_form_starts_from_the_current_values(admin_client, subscription):
    page = admin_client.get(action("edit", subscription)).content.decode()
    assert 'value="https://hooks.example.com/in"' in page
    assert 'value="lot.created" id="type-lotcreated" checked' in page
    assert 'value="harvest.recorded" id="type-harvestrecorded" checked' in page
    assert 'value="order.created" id="type-ordercreated">' in page
    assert ">Save</button>" in page


def test_save_changes_url_and_types_for_the_next_event(admin_client, org, alice, subscription):
    response = admin_client.post(action("edit", subscription), {
        "url": "https://new.example.com/v2", "activity_types": ["order.created"], "description": "Orders"})
    assert response["Location"] == action("detail", subscription)
    subscription.refresh_from_db()
    assert subscription.url == "https://new.example.com/v2"
    assert subscription.description == "Orders"
    assert list(subscription.activity_types.values_list("activity_type", flat=True)) == ["order.created"]
    entry = TrailEntry.objects.filter(subscription=subscription, action=TrailEntry.Action.EDITED).get()
    assert entry.actor == alice and "new.example.com" in entry.detail
    # The next event follows the new selection.
    assert not Delivery.objects.filter(event=record_activity(organisation=org, activity_type="lot.created",
                                                             data={})).exists()
    assert Delivery.objects.filter(event=record_activity(organisation=org, activity_type="order.created",
                                                         data={}), subscription=subscription).exists()
    page = admin_client.get(action("detail", subscription)).content.decode()
    assert "Saved. The changes apply from the next event." in page


def test_bad_edit_keeps_what_was_typed_and_changes_nothing(admin_client, subscription):
    """Bad input: an http:// URL and no activity type on Save."""
    page = admin_client.post(action("edit", subscription), {"url": "http://new.example.com/"}).content.decode()
    assert "The URL must use HTTPS." in page and "Select at least one activity type." in page
    assert 'value="http://new.example.com/"' in page
    assert 'value="lot.created" id="type-lotcreated">' in page  # unchecked, as submitted
    subscription.refresh_from_db()
    assert subscription.url == "https://hooks.example.com/in"
    assert subscription.activity_types.count() == 2


def test_test_webhook_sends_the_sample_to_this_webhook_only(admin_client, org, subscription):
    other, _ = make_subscription(org, url="https://other.example.com/in", activity_types=["lot.created"])
    response = admin_client.post(action("test", subscription), {"activity_type": "harvest.recorded"})
    assert response["Location"] == action("detail", subscription) + "#delivery-log"
    event = Event.objects.get()
    body = json.loads(event.body)
    assert body["type"] == "harvest.recorded" and body["test"] is True and body["data"]["harvest_id"]
    (delivery,) = Delivery.objects.filter(event=event)
    assert delivery.subscription_id == subscription.id and delivery.state == Delivery.State.PENDING
    assert not Delivery.objects.filter(subscription=other).exists()
    page = admin_client.get(action("detail", subscription)).content.decode()
    assert "Test sent: Harvest recorded" in page and "Sent a test" in page
    assert f"evt_{event.id.hex}"[:17] in page


def test_test_webhook_refuses_a_type_the_webhook_does_not_have(admin_client, subscription):
    """Bad input: a type outside the webhook's selection, an unknown type, and none."""
    for data in ({"activity_type": "order.created"}, {"activity_type": "lot.exploded"}, {}):
        assert admin_client.post(action("test", subscription), data).status_code == 400, data
    assert not Event.objects.exists()


def test_pause_holds_events_and_resume_releases_them(admin_client, org, alice, subscription):
    admin_client.post(action("pause", subscription))
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.PAUSED
    held = record_activity(organisation=org, activity_type="lot.created", data={})
    assert Delivery.objects.get(event=held).state == Delivery.State.HELD
    page = admin_client.get(reverse("console:subscription_list")).content.decode()
    assert "1 held delivery" in page and "Paused by alice." in page

    response = admin_client.post(action("resume", subscription), follow=True)
    assert "Resumed. 1 held delivery is being sent, oldest first." in response.content.decode()
    assert Delivery.objects.get(event=held).state == Delivery.State.PENDING
    actions = list(TrailEntry.objects.filter(subscription=subscription).values_list("action", "actor"))
    assert (TrailEntry.Action.PAUSED, alice.id) in actions and (TrailEntry.Action.RESUMED, alice.id) in actions


def test_pause_twice_writes_one_trail_entry(admin_client, subscription):
    """Bad input: a double-submitted Pause."""
    admin_client.post(action("pause", subscription))
    admin_client.post(action("pause", subscription))
    assert TrailEntry.objects.filter(subscription=subscription, action=TrailEntry.Action.PAUSED).count() == 1


def test_delete_asks_first_then_cancels_pending_deliveries(admin_client, org, subscription):
    pending = record_activity(organisation=org, activity_type="lot.created", data={})
    confirm = admin_client.get(action("delete", subscription)).content.decode()
    assert "cancels any pending deliveries" in confirm and "This action cannot be undone." in confirm
    assert Subscription.objects.get(id=subscription.id).deleted_at is None  # a GET deletes nothing

    response = admin_client.post(action("delete", subscription), follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("console:subscription_list")
    assert "Deleted the webhook to https://hooks.example.com/in. 1 pending delivery was cancelled." in page
    assert "No webhooks yet" in page
    assert Delivery.objects.get(event=pending).state == Delivery.State.CANCELLED
    assert admin_client.get(action("detail", subscription)).status_code == 404
    assert admin_client.post(action("delete", subscription)).status_code == 404  # a second click


def test_regenerate_get_only_asks(admin_client, subscription):
    before = Subscription.objects.get(id=subscription.id).secret_encrypted
    page = admin_client.get(action("regenerate", subscription)).content.decode()
    assert "When the previous secret stops signing" in page
    assert "Update your receiver first" in page
    assert Subscription.objects.get(id=subscription.id).secret_encrypted == before


def test_retry_failed_since_sends_failed_deliveries_again_with_their_event_ids(admin_client, org, alice,
                                                                               subscription):
    from datetime import timedelta

    from django.utils import timezone

    old = record_activity(organisation=org, activity_type="lot.created", data={"n": "old"})
    recent = record_activity(organisation=org, activity_type="lot.created", data={"n": "recent"})
    Delivery.objects.update(state=Delivery.State.FAILED, attempt_count=8, next_attempt_at=None)
    Delivery.objects.filter(event=old).update(created_at=timezone.now() - timedelta(days=3))

    detail = admin_client.get(action("detail", subscription)).content.decode()
    assert "Retry failed deliveries since" in detail
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = admin_client.post(action("recover", subscription), {"since": since}, follow=True)

    assert "1 failed delivery sent again." in response.content.decode()
    assert Delivery.objects.get(event=recent).state == Delivery.State.PENDING
    assert Delivery.objects.get(event=old).state == Delivery.State.FAILED  # before "since": left alone
    assert TrailEntry.objects.filter(subscription=subscription, action=TrailEntry.Action.RECOVERED,
                                     actor=alice).exists()


def test_retry_failed_since_refuses_a_missing_date_and_changes_nothing(admin_client, org, subscription):
    """Bad input: an empty "since" and a date that is not a date."""
    record_activity(organisation=org, activity_type="lot.created", data={})
    Delivery.objects.update(state=Delivery.State.FAILED)
    for since in ("", "yesterday-ish"):
        response = admin_client.post(action("recover", subscription), {"since": since}, follow=True)
        assert "Enter the date and time from which to retry failed deliveries (UTC)." in response.content.decode()
    assert Delivery.objects.get().state == Delivery.State.FAILED


def test_retry_failed_since_is_for_admins_only(client, bob, org, subscription):
    client.force_login(bob)
    record_activity(organisation=org, activity_type="lot.created", data={})
    Delivery.objects.update(state=Delivery.State.FAILED)
    assert client.post(action("recover", subscription), {"since": "2020-01-01"}).status_code == 403
    assert Delivery.objects.get().state == Delivery.State.FAILED
