"""Planned secret rotation in the pages: Regenerate Secret's choice of when the old secret stops, and Stop it now."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import make_subscription, send_now
from delivery.models import Delivery
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.usefixtures("web_settings")

ALSO_SIGNS = "The old secret also signs every delivery until"


def action(name, subscription):
    return reverse(f"console:subscription_{name}", args=[subscription.id])


def _secret_on(page: str) -> str:
    return re.search(r'value="(whsec_[^"]+)"', page).group(1)


def test_the_confirmation_keeps_the_seeds_warning_and_at_once_is_the_default(admin_client, subscription):
    page = admin_client.get(action("regenerate", subscription)).content.decode()
    assert "as soon as you regenerate, the old secret stops working" in page
    assert 'value="0" id="overlap-0" checked' in page
    for hours in ("1", "6", "24"):
        assert f'value="{hours}" id="overlap-{hours}">' in page  # offered, not chosen
    assert "Keep signing with the old secret too, for 24 hours" in page


def test_regenerating_with_the_default_stops_the_old_secret_at_once(admin_client, subscription):
    response = admin_client.post(action("regenerate", subscription), follow=True)  # as the seed's button did
    page = response.content.decode()
    assert "whsec_" in page and ALSO_SIGNS not in page
    subscription.refresh_from_db()
    assert subscription.previous_secret_until is None and subscription.previous_secret_encrypted == ""
    assert ALSO_SIGNS not in admin_client.get(action("detail", subscription)).content.decode()


def test_regenerating_with_6_hours_says_until_when_on_the_secret_and_detail_pages(admin_client, subscription):
    before = timezone.now()
    response = admin_client.post(action("regenerate", subscription), {"overlap_hours": "6"}, follow=True)

    subscription.refresh_from_db()
    until = subscription.previous_secret_until
    assert before + timedelta(hours=6) <= until <= timezone.now() + timedelta(hours=6)
    stamp = until.strftime("%-d %b %Y, %H:%M") + " UTC"
    page = response.content.decode()
    assert _secret_on(page).startswith("whsec_")
    assert ALSO_SIGNS in page and stamp in page
    assert f'href="{action("stop_old_secret", subscription)}">Stop the old secret now…</a>' in page
    detail = admin_client.get(action("detail", subscription)).content.decode()
    assert ALSO_SIGNS in detail and stamp in detail and "Stop the old secret now…" in detail
    assert TrailEntry.objects.filter(subscription=subscription, detail__contains="also signs until").exists()


@pytest.mark.parametrize("overlap", ["12", "48", "-1", "all day"])
def test_an_overlap_not_offered_is_refused_at_the_field_and_nothing_changes(admin_client, subscription, overlap):
    before = Subscription.objects.get(id=subscription.id).secret_encrypted

    response = admin_client.post(action("regenerate", subscription), {"overlap_hours": overlap})  # bad input

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="error-summary"' in page and 'href="#overlap"' in page
    assert "Choose when the old secret stops: at once, or after 1, 6 or 24 hours." in page
    assert "whsec_" not in page
    assert Subscription.objects.get(id=subscription.id).secret_encrypted == before


def test_stop_the_old_secret_asks_first_then_only_the_new_one_signs(admin_client, alice, subscription):
    admin_client.post(action("regenerate", subscription), {"overlap_hours": "24"})
    confirm = admin_client.get(action("stop_old_secret", subscription)).content.decode()
    assert "From the next attempt, only the new secret signs." in confirm
    assert Subscription.objects.get(id=subscription.id).previous_secret_until is not None  # a GET stops nothing

    response = admin_client.post(action("stop_old_secret", subscription), follow=True)

    page = response.content.decode()
    assert "The old secret stopped signing" in page and ALSO_SIGNS not in page
    subscription.refresh_from_db()
    assert subscription.previous_secret_until is None and subscription.previous_secret_encrypted == ""
    assert TrailEntry.objects.filter(subscription=subscription, actor=alice,
                                     action=TrailEntry.Action.OLD_SECRET_STOPPED).exists()
    again = admin_client.post(action("stop_old_secret", subscription), follow=True).content.decode()
    assert "The old secret had already stopped signing." in again


def test_a_finished_overlap_is_not_shown_as_running(admin_client, subscription):
    admin_client.post(action("regenerate", subscription), {"overlap_hours": "1"})
    Subscription.objects.filter(id=subscription.id).update(previous_secret_until=timezone.now() - timedelta(minutes=1))
    assert ALSO_SIGNS not in admin_client.get(action("detail", subscription)).content.decode()
    assert "no longer signs" in admin_client.get(action("stop_old_secret", subscription)).content.decode()


def test_a_member_sees_until_when_but_can_neither_regenerate_nor_stop(client, bob, alice, subscription):
    client.force_login(alice)
    client.post(action("regenerate", subscription), {"overlap_hours": "6"})
    client.force_login(bob)
    detail = client.get(action("detail", subscription)).content.decode()
    assert ALSO_SIGNS in detail and "Stop the old secret now" not in detail
    assert client.post(action("stop_old_secret", subscription)).status_code == 403
    assert client.post(action("regenerate", subscription), {"overlap_hours": "1"}).status_code == 403
    assert Subscription.objects.get(id=subscription.id).previous_secret_until is not None


def test_after_regenerating_with_an_overlap_on_the_page_a_delivery_verifies_with_either_secret(
        client, alice, org, receiver):
    subscription, old = make_subscription(org, url=receiver.url, created_by=alice)
    client.force_login(alice)
    page = client.post(action("regenerate", subscription), {"overlap_hours": "1"}, follow=True).content.decode()
    new = _secret_on(page)

    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "ROT"})
    send_now(Delivery.objects.get(event=event).id)

    (request,) = receiver.received
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
    client.post(action("stop_old_secret", subscription))
    send_now(Delivery.objects.get(event=record_activity(organisation=org, activity_type="lot.created",
                                                        data={"lot_id": "ROT2"})).id)
    Webhook(new).verify(receiver.received[-1].body, receiver.received[-1].headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(receiver.received[-1].body, receiver.received[-1].headers)
