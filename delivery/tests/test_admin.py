"""The delivery log in the Django admin is read-only: no add, change or delete of events, deliveries or attempts."""

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Attempt, Delivery
from subscriptions.activity import record_activity

pytestmark = pytest.mark.usefixtures("web_settings")


def test_deliveries_and_attempts_are_read_only(client, org, superuser):
    subscription, secret = make_subscription(org)
    event = record_activity(organisation=org, activity_type="lot.created", data={})
    delivery = Delivery.objects.get(event=event)
    attempt = Attempt.objects.create(delivery=delivery, number=1, url=subscription.url, started_at=timezone.now(),
                                     duration_ms=5, request_headers={"webhook-signature": "v1,abc"}, status_code=200)
    client.force_login(superuser)
    for model, obj in (("delivery", delivery), ("attempt", attempt), ("event", event)):
        assert client.get(reverse(f"admin:delivery_{model}_changelist")).status_code == 200, model
        page = client.get(reverse(f"admin:delivery_{model}_change", args=[obj.pk]))
        assert page.status_code == 200, model
        assert secret not in page.content.decode()
        assert 'type="submit" value="Save"' not in page.content.decode(), model
        assert client.get(reverse(f"admin:delivery_{model}_add")).status_code == 403, model
        assert client.post(reverse(f"admin:delivery_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    # Bad input: a forged change POST.
    client.post(reverse("admin:delivery_delivery_change", args=[delivery.pk]), {"state": "succeeded"})
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING
    assert Attempt.objects.count() == 1
