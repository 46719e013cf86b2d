"""Retry failed deliveries since a moment: same event ids, oldest first, held while paused.

Sends go through the worker's task (delivery.tasks.send_endpoint), in-process, to the real HTTPS receiver.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Delivery
from delivery.services import deliveries_recover_since
from delivery.tasks import send_endpoint
from subscriptions.activity import record_activity
from subscriptions.models import TrailEntry
from subscriptions.services import subscription_delete, subscription_pause

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(org, receiver, settings):
    """Return (subscription, [old, recent_a, recent_b, succeeded]) deliveries; the first three failed for good."""
    settings.WEBHOOKS_RETRY_SCHEDULE = []  # one attempt, then failed
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.extend([500, 500, 500, 200])
    events = [record_activity(organisation=org, activity_type="lot.created", data={"n": i}) for i in range(4)]
    deliveries = [Delivery.objects.get(event=e) for e in events]
    assert send_endpoint(str(subscription.id)) == 4
    Delivery.objects.filter(id=deliveries[0].id).update(created_at=timezone.now() - timedelta(days=2))
    assert [Delivery.objects.get(id=d.id).state for d in deliveries] == ["failed"] * 3 + ["succeeded"]
    return subscription, deliveries


def test_recover_since_sends_the_failed_deliveries_since_then_again_oldest_first(
    failed, receiver, alice, monkeypatch, django_capture_on_commit_callbacks
):
    subscription, (old, recent_a, recent_b, _) = failed
    woken = []
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: woken.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        count = deliveries_recover_since(subscription=subscription, since=timezone.now() - timedelta(days=1), by=alice)

    assert count == 2 and woken == [subscription.id]  # one wake-up for the endpoint, on commit
    assert send_endpoint(str(subscription.id)) == 2
    resent = [r.headers["webhook-id"] for r in receiver.received[4:]]
    assert resent == [recent_a.event.webhook_id, recent_b.event.webhook_id]
    assert Delivery.objects.get(id=recent_a.id).state == Delivery.State.SUCCEEDED
    assert Delivery.objects.get(id=recent_a.id).attempt_count == 2
    assert Delivery.objects.get(id=old.id).state == Delivery.State.FAILED  # before `since`: left alone
    entry = TrailEntry.objects.filter(subscription=subscription).first()
    assert entry.action == TrailEntry.Action.RECOVERED and entry.actor == alice
    assert entry.detail.startswith("2 failed deliveries since ")


def test_recover_on_a_paused_subscription_holds_them_for_resume(failed, receiver, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    subscription, deliveries = failed
    subscription_pause(subscription=subscription)
    woken = []
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: woken.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_recover_since(subscription=subscription, since=timezone.now() - timedelta(days=3)) == 3
    assert Delivery.objects.filter(subscription=subscription, state=Delivery.State.HELD).count() == 3
    assert woken == []  # nothing to send until Resume
    assert send_endpoint(str(subscription.id)) == 0 and len(receiver.received) == 4
    entry = TrailEntry.objects.filter(subscription=subscription).first()
    assert entry.action == TrailEntry.Action.RECOVERED and entry.detail.endswith(", held until Resume")


def test_recover_on_a_deleted_subscription_recovers_nothing(failed, receiver):
    subscription, _ = failed
    subscription_delete(subscription=subscription)
    assert deliveries_recover_since(subscription=subscription, since=timezone.now() - timedelta(days=3)) == 0
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 3
    assert send_endpoint(str(subscription.id)) == 0 and len(receiver.received) == 4
